//! GitLab applications on GitLab.com or a self-managed GitLab CE/EE server: access tokens
//! refreshed from a user's grant (the OAuth engine, [`super::oauth`]).

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::civil::Date;
use k8s_openapi::jiff::tz::TimeZone;
use serde_json::json;

use super::http::{self, AUTHENTICATION_FAILED};
use super::oauth::{App, ClientAuth, OAuthKind, Refresh};
use super::url::{base, host, parse_http};
use super::{Granted, Minted, ProviderError, Request, Revoked, Stored, Validated, block};
use crate::api::token::{GitlabAccessLevel, GitlabAccessTokenRequest};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};
use crate::conditions::reasons;
use crate::output::Credential;

/// Days a project or group access token lives when the token does not say.
const DEFAULT_LIFETIME_DAYS: u32 = 2;

/// GitLab's number for a role.
fn level_number(level: GitlabAccessLevel) -> u16 {
    match level {
        GitlabAccessLevel::Guest => 10,
        GitlabAccessLevel::Reporter => 20,
        GitlabAccessLevel::Developer => 30,
        GitlabAccessLevel::Maintainer => 40,
    }
}

/// Where a project or group access token is created: `projects/acme%2Fapp` or `groups/7`.
fn resource(request: &GitlabAccessTokenRequest) -> (&'static str, &str) {
    match (&request.project, &request.group) {
        (Some(project), _) => ("projects", project),
        (None, Some(group)) => ("groups", group),
        (None, None) => ("projects", ""),
    }
}

/// The expiry date `days` after today (UTC), and the instant GitLab expires the token (the
/// start of that day, UTC).
fn expiry(now: Timestamp, days: u32) -> Option<(Date, Timestamp)> {
    let today = now.to_zoned(TimeZone::UTC).date();
    let date = today
        .checked_add(k8s_openapi::jiff::Span::new().days(i64::from(days)))
        .ok()?;
    let at = date.to_zoned(TimeZone::UTC).ok()?.timestamp();
    Some((date, at))
}

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

/// What GitLab answered for a new project or group access token.
fn read_resource_token(
    answer: &http::Answer,
    what: &str,
) -> Result<(String, Option<String>), ProviderError> {
    match answer.status.as_u16() {
        200 | 201 => {}
        401 => {
            return Err(ProviderError::transient(
                AUTHENTICATION_FAILED,
                format!("{what}: GitLab refused the user's access token"),
            ));
        }
        403 => {
            return Err(ProviderError::config(
                "InsufficientRole",
                format!(
                    "{what}: GitLab refused; the signed-in user must be a Maintainer (or Owner) \
                     there to create access tokens"
                ),
            ));
        }
        400 | 404 | 422 => {
            let said = answer.json()["message"].to_string();
            return Err(ProviderError::config(
                reasons::INVALID_SPEC,
                format!(
                    "spec.oauth.gitlab: {what}: GitLab answered HTTP {}: {}",
                    answer.status.as_u16(),
                    http::printable(&said, 200)
                ),
            ));
        }
        _ => return Err(answer.unexpected(what)),
    }
    let body = answer.json();
    let token = (body["token"].as_str())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ProviderError::transient(
                reasons::INVALID_RESPONSE,
                format!("{what}: GitLab's answer has no token"),
            )
        })?;
    Ok((
        token.to_owned(),
        body["expires_at"].as_str().map(|d| http::printable(d, 20)),
    ))
}

/// Why GitLab tokens are refreshed late, for the status.
const REVOKES: &str = "a GitLab refresh revokes the access token it replaces";

#[async_trait]
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
            variable: None,
        })
    }

    fn device_authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        let gitlab = block(&conn.spec.gitlab, "gitlab")?;
        let (web, _) = gitlab_endpoints("spec.gitlab.serverUrl", &gitlab.server_url)?;
        Ok(Some(format!("{web}/oauth/authorize_device")))
    }

    fn narrowing(&self, request: &Request<'_>) -> Result<Option<Vec<String>>, ProviderError> {
        let Some(asked) = (request.token.spec.oauth.as_ref()).and_then(|o| o.gitlab.as_ref())
        else {
            return Ok(None);
        };
        let (of, id) = resource(asked);
        let mut parts = vec![
            format!("gitlab:{of}/{id}"),
            format!("level:{:?}", asked.access_level),
        ];
        parts.extend(asked.scopes.iter().map(|s| format!("scope:{s}")));
        parts.push(format!(
            "days:{}",
            asked.lifetime_days.unwrap_or(DEFAULT_LIFETIME_DAYS)
        ));
        Ok(Some(parts))
    }

    async fn narrow(
        &self,
        request: &Request<'_>,
        app: &App<'_>,
        access_token: &str,
    ) -> Result<Minted, ProviderError> {
        let gitlab = block(&request.connection.spec.gitlab, "gitlab")?;
        let (_, api) = gitlab_endpoints("spec.gitlab.serverUrl", &gitlab.server_url)?;
        let asked = (request.token.spec.oauth.as_ref())
            .and_then(|o| o.gitlab.as_ref())
            .ok_or_else(|| ProviderError::not_available("no GitLab access token was asked for"))?;
        let (of, id) = resource(asked);
        let days = asked
            .lifetime_days
            .unwrap_or(DEFAULT_LIFETIME_DAYS)
            .clamp(1, 30);
        let (date, expires_at) = expiry(Timestamp::now(), days).ok_or_else(|| {
            ProviderError::transient(reasons::INVALID_RESPONSE, "cannot compute an expiry date")
        })?;
        let encoded: String = ::url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let url = format!("{api}/{of}/{encoded}/access_tokens");
        let what = format!("creating an access token for {} {id}", &of[..of.len() - 1]);
        let name = format!(
            "patchbay {}/{}",
            request
                .token
                .metadata
                .namespace
                .as_deref()
                .unwrap_or_default(),
            request.token.metadata.name.as_deref().unwrap_or_default()
        );
        let body = json!({
            "name": name,
            "scopes": asked.scopes,
            "access_level": level_number(asked.access_level),
            "expires_at": date.to_string(),
        });
        let client = http::client(request.env.ca_bundle)?;
        let call = client.post(&url).bearer_auth(access_token).json(&body);
        let answer = http::send(call, &api).await?;
        let (token, _) = read_resource_token(&answer, &what)?;
        let level = format!("{:?}", asked.access_level).to_lowercase();
        let granted = Granted {
            permissions: (asked.scopes.iter())
                .map(|s| (s.clone(), level.clone()))
                .collect(),
            repositories: vec![id.to_owned()],
            pat_source: None,
            note: Some(format!(
                "a GitLab {} access token for {id}, made with the user's grant",
                &of[..of.len() - 1]
            )),
        };
        Ok(Minted {
            credential: Credential::OAuth {
                access_token: token,
                expires_at,
                username: Some("oauth2"),
                server_url: app.git_url.clone(),
                variable: None,
            },
            granted: Some(granted),
            endpoint: Some(api),
            write_back: Vec::new(),
            failed: None,
        })
    }

    fn revokes_narrowed(&self) -> bool {
        true
    }

    async fn revoke_narrowed(&self, stored: &Stored<'_>) -> Result<Revoked, ProviderError> {
        // Only project and group tokens record their API; the user's own are not revoked.
        let Some(api) = stored.endpoint else {
            return Ok(Revoked::NotRevocable);
        };
        let token = (stored.data.get("token").or(stored.data.get("access_token")))
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or_else(|| ProviderError::not_available("no token to revoke"))?;
        let client = http::client(stored.ca_bundle)?;
        let url = format!("{api}/personal_access_tokens/self");
        let answer = http::send(client.delete(&url).header("private-token", token), api).await?;
        match answer.status.as_u16() {
            204 | 200 => Ok(Revoked::Revoked),
            // Already revoked or expired: nothing left to do.
            401 | 404 => Ok(Revoked::Revoked),
            _ => Err(answer.unexpected(&url)),
        }
    }

    fn authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        Ok(Some(
            self.app(conn, "")?
                .token_url
                .replace("/oauth/token", "/oauth/authorize"),
        ))
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
