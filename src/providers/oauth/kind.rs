//! [`OAuthKind`]: what an OAuth connection kind tells the engine about itself. Every type that
//! implements it is a [`Provider`] whose plan, mint and live check are the engine's.

use async_trait::async_trait;

use super::grant::{self, App};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};
use crate::providers::{
    Env, Minted, Plan, Provider, ProviderError, Request, SecretValues, Services, Validated,
    Verification,
};

/// An OAuth connection kind: its block, its client secret, and its [`App`].
pub trait OAuthKind: Send + Sync {
    /// The kind.
    const KIND: ConnectionKind;

    /// Checks the block without a provider call (see [`Provider::validate`]).
    fn check(&self, spec: &ConnectionSpec) -> Result<Validated, ProviderError>;

    /// The field and reference of the application's client secret.
    fn client_secret<'a>(
        &self,
        conn: &'a Connection,
    ) -> Result<(&'static str, &'a SecretKeyRef), ProviderError>;

    /// The application of `conn`, with `client_secret` (empty while planning).
    fn app<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Result<App<'a>, ProviderError>;
}

/// The application of `conn` with its client secret read from `secrets`.
fn app_with_secret<'a, K: OAuthKind>(
    kind: &K,
    conn: &'a Connection,
    secrets: &'a SecretValues,
) -> Result<App<'a>, ProviderError> {
    let (field, reference) = kind.client_secret(conn)?;
    let secret = secrets.text(field, reference)?.trim();
    kind.app(conn, secret)
}

#[async_trait]
impl<K: OAuthKind> Provider for K {
    fn kind(&self) -> ConnectionKind {
        K::KIND
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        self.check(spec)
    }

    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        grant::plan(request, &self.app(request.connection, "")?)
    }

    async fn verify(
        &self,
        conn: &Connection,
        env: &Env<'_>,
        secrets: &SecretValues,
        _: &Services,
    ) -> Verification {
        let app = match app_with_secret(self, conn, secrets) {
            Ok(app) => app,
            Err(e) => return Verification::Failed(e),
        };
        grant::verify(env, &app).await.into()
    }

    async fn mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
        _: &Services,
    ) -> Result<Minted, ProviderError> {
        let app = app_with_secret(self, request.connection, secrets)?;
        grant::mint(request, &app, secrets).await
    }
}
