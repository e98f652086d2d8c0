//! Google OAuth clients, through the OAuth engine ([`super::oauth`]): access tokens refreshed
//! from a user's grant. Google's refresh tokens are reusable (not rotated) and a refresh leaves
//! the access token it replaces valid; its tokens go in a bearer header, so they are written as
//! `opaque` with an `authorization` key. Google offers no client credentials grant to OAuth
//! clients (service accounts are another mechanism).

use super::oauth::{App, ClientAuth, OAuthKind, Refresh};
use super::url::{base, parse_http};
use super::{ProviderError, Validated, block};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};

pub(super) struct GoogleProvider;

impl OAuthKind for GoogleProvider {
    const KIND: ConnectionKind = ConnectionKind::Google;

    fn check(&self, spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
        let google = block(&spec.google, "google")?;
        parse_http("spec.google.serverUrl", &google.server_url)?;
        Ok(Validated {
            summary: format!("Google OAuth client {}", google.client_id),
        })
    }

    fn client_secret<'a>(
        &self,
        conn: &'a Connection,
    ) -> Result<(&'static str, &'a SecretKeyRef), ProviderError> {
        let google = block(&conn.spec.google, "google")?;
        Ok(("spec.google.clientSecret", &google.client_secret))
    }

    fn app<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Result<App<'a>, ProviderError> {
        let google = block(&conn.spec.google, "google")?;
        let server = base(
            &parse_http("spec.google.serverUrl", &google.server_url)?,
            "",
        );
        Ok(App {
            provider: "Google",
            token_url: format!("{server}/token"),
            client_id: &google.client_id,
            client_secret,
            auth: ClientAuth::Form,
            refresh: Refresh {
                single_use: false,
                revokes_access_token: None,
            },
            client_credentials: false,
            username: None,
            git_url: "https://source.developers.google.com".into(),
            extra: Vec::new(),
            default_scope: None,
            variable: None,
        })
    }

    fn device_authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        let google = block(&conn.spec.google, "google")?;
        let server = base(
            &parse_http("spec.google.serverUrl", &google.server_url)?,
            "",
        );
        Ok(Some(format!("{server}/device/code")))
    }
}
