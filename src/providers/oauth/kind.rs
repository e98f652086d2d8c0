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

    /// The device authorization endpoint (RFC 8628), where the provider has one.
    fn device_authorization_url(
        &self,
        _conn: &Connection,
    ) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }
}

/// What `patchbay login` needs of an OAuth connection.
#[derive(Debug)]
pub struct SignIn<'a> {
    /// The application, with the client secret it was given.
    pub app: App<'a>,
    /// The field and reference of the client secret.
    pub client_secret: (&'static str, &'a SecretKeyRef),
    /// The device authorization endpoint, where the provider has one.
    pub device_authorization_url: Option<String>,
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

    fn sign_in<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Option<Result<SignIn<'a>, ProviderError>> {
        let found = || {
            Ok(SignIn {
                app: self.app(conn, client_secret)?,
                client_secret: self.client_secret(conn)?,
                device_authorization_url: self.device_authorization_url(conn)?,
            })
        };
        Some(found())
    }
}
