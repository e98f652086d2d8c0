//! GitLab applications on GitLab.com or a self-managed GitLab CE/EE server: access tokens
//! refreshed from a user's grant (the OAuth engine, [`super::oauth`]).

use super::oauth::{App, ClientAuth, OAuthKind, Refresh};
use super::url::{base, host, parse_http};
use super::{ProviderError, Validated, block};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};

/// The web base and REST API base (`/api/v4`) of a GitLab server.
pub fn gitlab_endpoints(field: &str, server_url: &str) -> Result<(String, String), ProviderError> {
    let url = parse_http(field, server_url)?;
    let web = if host(&url) == "gitlab.com" {
        "https://gitlab.com".to_string()
    } else {
        base(&url, "/api/v4")
    };
    let api = format!("{web}/api/v4");
    Ok((web, api))
}

/// GitLab's OAuth behaviour: refresh tokens are single-use, and a refresh revokes the access
/// token it replaces (Doorkeeper's rotation), so tokens are refreshed late; git takes the
/// access token as the password of user `oauth2`. GitLab has no client credentials grant.
pub(super) struct GitlabProvider;

/// Why GitLab tokens are refreshed late, for the status.
const REVOKES: &str = "a GitLab refresh revokes the access token it replaces";

impl OAuthKind for GitlabProvider {
    const KIND: ConnectionKind = ConnectionKind::Gitlab;

    fn check(&self, spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
        let gitlab = block(&spec.gitlab, "gitlab")?;
        let (web, api) = gitlab_endpoints("spec.gitlab.serverUrl", &gitlab.server_url)?;
        let edition = if web == "https://gitlab.com" {
            "GitLab.com"
        } else {
            "GitLab CE/EE"
        };
        Ok(Validated {
            summary: format!("{edition} application {} at {api}", gitlab.application_id),
        })
    }

    fn client_secret<'a>(
        &self,
        conn: &'a Connection,
    ) -> Result<(&'static str, &'a SecretKeyRef), ProviderError> {
        Ok((
            "spec.gitlab.secret",
            &block(&conn.spec.gitlab, "gitlab")?.secret,
        ))
    }

    fn app<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Result<App<'a>, ProviderError> {
        let gitlab = block(&conn.spec.gitlab, "gitlab")?;
        let (web, _) = gitlab_endpoints("spec.gitlab.serverUrl", &gitlab.server_url)?;
        Ok(App {
            provider: "GitLab",
            token_url: format!("{web}/oauth/token"),
            client_id: &gitlab.application_id,
            client_secret,
            auth: ClientAuth::Basic,
            refresh: Refresh {
                single_use: true,
                revokes_access_token: Some(REVOKES),
            },
            client_credentials: false,
            username: Some("oauth2"),
            git_url: web,
            extra: Vec::new(),
            default_scope: None,
        })
    }

    fn device_authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        let gitlab = block(&conn.spec.gitlab, "gitlab")?;
        let (web, _) = gitlab_endpoints("spec.gitlab.serverUrl", &gitlab.server_url)?;
        Ok(Some(format!("{web}/oauth/authorize_device")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_com_and_self_managed_servers_get_their_api_base() {
        assert_eq!(
            gitlab_endpoints("f", "https://gitlab.com/").unwrap().1,
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            gitlab_endpoints("f", "https://git.example.com/gitlab/api/v4").unwrap(),
            (
                "https://git.example.com/gitlab".into(),
                "https://git.example.com/gitlab/api/v4".into()
            )
        );
    }
}
