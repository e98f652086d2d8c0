//! JetBrains Space applications, through the OAuth engine ([`super::oauth`]): tokens for the
//! application itself (client credentials, `POST /oauth/token`), or refreshed from a user's
//! grant. Space's refresh tokens are reusable and a refresh leaves the access token it replaces
//! valid; its tokens go in a bearer header, so they are written as `opaque` with an
//! `authorization` key.

use super::oauth::{App, ClientAuth, OAuthKind, Refresh};
use super::url::{base, parse_http};
use super::{ProviderError, Validated, block};
use crate::api::connection::SpaceMode;
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};
use crate::conditions::reasons;

pub(super) struct JetbrainsSpaceProvider;

impl OAuthKind for JetbrainsSpaceProvider {
    const KIND: ConnectionKind = ConnectionKind::JetbrainsSpace;

    fn check(&self, spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
        let space = block(&spec.jetbrains_space, "jetbrainsSpace")?;
        let url = parse_http("spec.jetbrainsSpace.serverUrl", &space.server_url)?;
        let scope = match (space.mode, &space.project) {
            (SpaceMode::Project, Some(project)) => format!("project {project}"),
            (SpaceMode::Project, None) => {
                return Err(ProviderError::config(
                    reasons::INVALID_SPEC,
                    "spec.jetbrainsSpace.project: required when mode is project",
                ));
            }
            (SpaceMode::Organization, _) => "the organization".to_string(),
        };
        Ok(Validated {
            summary: format!("JetBrains Space at {} for {scope}", base(&url, "")),
        })
    }

    fn client_secret<'a>(
        &self,
        conn: &'a Connection,
    ) -> Result<(&'static str, &'a SecretKeyRef), ProviderError> {
        let space = block(&conn.spec.jetbrains_space, "jetbrainsSpace")?;
        Ok(("spec.jetbrainsSpace.clientSecret", &space.client_secret))
    }

    fn app<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Result<App<'a>, ProviderError> {
        let space = block(&conn.spec.jetbrains_space, "jetbrainsSpace")?;
        let web = base(
            &parse_http("spec.jetbrainsSpace.serverUrl", &space.server_url)?,
            "",
        );
        Ok(App {
            provider: "JetBrains Space",
            token_url: format!("{web}/oauth/token"),
            client_id: &space.client_id,
            client_secret,
            auth: ClientAuth::Basic,
            refresh: Refresh {
                single_use: false,
                revokes_access_token: None,
            },
            client_credentials: true,
            username: None,
            git_url: web,
            extra: Vec::new(),
            default_scope: None,
            variable: None,
        })
    }

    fn authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        Ok(Some(
            self.app(conn, "")?
                .token_url
                .replace("/oauth/token", "/oauth/auth"),
        ))
    }
}
