//! [`OAuthKind`]: what an OAuth connection kind tells the engine about itself. Every type that
//! implements it is a [`Provider`] whose plan, mint and live check are the engine's.

use async_trait::async_trait;

use super::grant::{self, App};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};
use crate::conditions::reasons;
use crate::output::Credential;
use crate::providers::{
    Env, Minted, Plan, Provider, ProviderError, Request, Revoked, SecretValues, SecretWrite,
    Services, Stored, Validated, Verification,
};

/// An OAuth connection kind: its block, its client secret, and its [`App`]; and, where the
/// provider can mint them, narrower credentials made with the user's access token.
#[async_trait]
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

    /// The authorization endpoint of the authorization code flow, for providers without a
    /// device grant (`patchbay login` then uses a loopback redirect with PKCE).
    fn authorization_url(&self, _conn: &Connection) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }

    /// What a token asks for beyond the user's own access token, as request-hash parts
    /// (`None`: nothing). Kinds that cannot narrow refuse a request that asks.
    fn narrowing(&self, request: &Request<'_>) -> Result<Option<Vec<String>>, ProviderError> {
        let asks = (request.token.spec.oauth.as_ref()).is_some_and(|o| o.gitlab.is_some());
        match asks {
            true => Err(ProviderError::config(
                reasons::INVALID_SPEC,
                format!(
                    "spec.oauth.gitlab: project and group access tokens are minted only from                      gitlab connections, not {}",
                    Self::KIND.field_name()
                ),
            )),
            false => Ok(None),
        }
    }

    /// Mints the narrower credential [`narrowing`](Self::narrowing) asked for, with the user's
    /// `access_token`.
    async fn narrow(
        &self,
        _request: &Request<'_>,
        _app: &App<'_>,
        _access_token: &str,
    ) -> Result<Minted, ProviderError> {
        Err(ProviderError::not_available(
            "this kind mints no narrower credentials",
        ))
    }

    /// Revokes a narrower credential (see [`Provider::revoke`]); the user's own access tokens
    /// are not revoked (a refresh replaces them).
    async fn revoke_narrowed(&self, _stored: &Stored<'_>) -> Result<Revoked, ProviderError> {
        Ok(Revoked::NotRevocable)
    }

    /// Whether [`revoke_narrowed`](Self::revoke_narrowed) revokes anything.
    fn revokes_narrowed(&self) -> bool {
        false
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
    /// The authorization endpoint, where `patchbay login` uses the authorization code flow.
    pub authorization_url: Option<String>,
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
        let mut plan = grant::plan(request, &self.app(request.connection, "")?)?;
        if let Some(parts) = self.narrowing(request)? {
            plan.hash_parts.extend(parts);
            // A narrower token is the provider's own credential: a refresh does not touch it,
            // so it neither renews late nor follows the grant.
            plan.late = None;
            if let Some(grant) = plan.grant.as_mut() {
                grant.follows = false;
            }
        }
        Ok(plan)
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
        let user = grant::mint(request, &app, secrets).await?;
        if user.failed.is_some() || self.narrowing(request)?.is_none() {
            return Ok(user);
        }
        let Credential::OAuth { access_token, .. } = &user.credential else {
            return Ok(user);
        };
        // The user's rotated grant is stored even though their own token is not published,
        // and even when the narrower token cannot be had.
        match self.narrow(request, &app, access_token).await {
            Ok(narrowed) => Ok(Minted {
                write_back: user.write_back,
                ..narrowed
            }),
            Err(e) => Ok(Minted {
                failed: Some(e),
                ..user
            }),
        }
    }

    fn before_mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
    ) -> Result<Vec<SecretWrite>, ProviderError> {
        grant::before_mint(request, &self.app(request.connection, "")?, secrets)
    }

    fn revocable(&self) -> bool {
        self.revokes_narrowed()
    }

    async fn revoke(&self, stored: &Stored<'_>, _: &Services) -> Result<Revoked, ProviderError> {
        self.revoke_narrowed(stored).await
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
                authorization_url: self.authorization_url(conn)?,
            })
        };
        Some(found())
    }
}
