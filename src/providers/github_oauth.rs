//! GitHub OAuth applications (and GitHub Apps acting for a user) on github.com or GitHub
//! Enterprise Server: user access tokens refreshed from a user's grant (the OAuth engine,
//! [`super::oauth`]). GitHub answers token errors with HTTP 200 and an `error` field; its
//! refresh tokens are single-use and a refresh revokes the access token it replaces, so tokens
//! are refreshed late. Git takes the token as the password of user `x-access-token`. GitHub
//! has no client credentials grant (an App's own tokens are `githubApp` connections).

use super::github_app::github_endpoints;
use super::oauth::{App, ClientAuth, OAuthKind, Refresh};
use super::{ProviderError, Validated, block};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};

pub(super) struct GithubOAuthProvider;

impl OAuthKind for GithubOAuthProvider {
    const KIND: ConnectionKind = ConnectionKind::GithubOAuth;

    fn check(&self, spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
        let oauth = block(&spec.github_oauth, "githubOAuth")?;
        let endpoints = github_endpoints("spec.githubOAuth.serverUrl", &oauth.server_url)?;
        Ok(Validated {
            summary: format!("GitHub OAuth app {} at {}", oauth.client_id, endpoints.web),
        })
    }

    fn client_secret<'a>(
        &self,
        conn: &'a Connection,
    ) -> Result<(&'static str, &'a SecretKeyRef), ProviderError> {
        let oauth = block(&conn.spec.github_oauth, "githubOAuth")?;
        Ok(("spec.githubOAuth.clientSecret", &oauth.client_secret))
    }

    fn app<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Result<App<'a>, ProviderError> {
        let oauth = block(&conn.spec.github_oauth, "githubOAuth")?;
        let endpoints = github_endpoints("spec.githubOAuth.serverUrl", &oauth.server_url)?;
        Ok(App {
            provider: "GitHub",
            token_url: format!("{}/login/oauth/access_token", endpoints.web),
            client_id: &oauth.client_id,
            client_secret,
            auth: ClientAuth::Form,
            refresh: Refresh {
                single_use: true,
                revokes_access_token: Some(
                    "a GitHub refresh revokes the user access token it replaces",
                ),
            },
            client_credentials: false,
            username: Some("x-access-token"),
            git_url: endpoints.web,
            extra: Vec::new(),
            default_scope: None,
            variable: None,
        })
    }

    fn device_authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        let oauth = block(&conn.spec.github_oauth, "githubOAuth")?;
        let endpoints = github_endpoints("spec.githubOAuth.serverUrl", &oauth.server_url)?;
        Ok(Some(format!("{}/login/device/code", endpoints.web)))
    }

    fn authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        let url = self.app(conn, "")?.token_url;
        Ok(Some(url.replace(
            "/login/oauth/access_token",
            "/login/oauth/authorize",
        )))
    }
}
