//! Slack apps: the bot token as `SLACK_BOT_TOKEN`. Without token rotation it is long-lived:
//! copied only where the connection allows. For an app with token rotation, a token naming
//! the app's refresh token (`spec.oauth.refreshToken`) gets a 12-hour bot token through the
//! OAuth engine ([`super::oauth`]) at `oauth.v2.access` (the client in the form; errors as
//! HTTP 200 with `ok: false`; each refresh returns a new refresh token, stored first), also
//! as `SLACK_BOT_TOKEN`. The live check is `auth.test`, whose failures arrive as HTTP 200 with
//! `ok: false`.

use async_trait::async_trait;

use super::http::{self, AUTHENTICATION_FAILED, INSUFFICIENT_SCOPE, TOKEN_REVOKED};
use super::oauth::{self, App, ClientAuth, Refresh};
use super::url::{base, parse_http};
use super::{
    Env, Minted, Plan, Provider, ProviderError, Request, SecretValues, Services, Validated,
    Verification, block,
};
use crate::api::token::SecretFormat;
use crate::api::{Connection, ConnectionKind, ConnectionSpec};
use crate::output::Credential;

/// What an `auth.test` error code means: the reason and what to fix.
pub fn auth_test_error(code: &str) -> (&'static str, &'static str) {
    match code {
        "token_revoked" | "token_expired" | "account_inactive" => (
            TOKEN_REVOKED,
            "the bot token was revoked or expired (or the app was uninstalled); reinstall the \
             app and put its new bot token in the Secret",
        ),
        "missing_scope" | "no_permission" | "not_allowed_token_type" => (
            INSUFFICIENT_SCOPE,
            "the token lacks a scope the check needs; use the app's bot token (xoxb-)",
        ),
        _ => (
            AUTHENTICATION_FAILED,
            "Slack does not accept the bot token; check spec.slack.botToken",
        ),
    }
}

async fn check(
    conn: &Connection,
    env: &Env<'_>,
    secrets: &SecretValues,
) -> Result<String, ProviderError> {
    let slack = block(&conn.spec.slack, "slack")?;
    let api = base(&parse_http("spec.slack.apiUrl", &slack.api_url)?, "");
    let token = secrets
        .text("spec.slack.botToken", &slack.bot_token)?
        .trim();
    let client = http::client(env.ca_bundle)?;
    let what = format!("{api}/auth.test");
    let answer = http::send(client.post(&what).bearer_auth(token), &api).await?;
    if !answer.status.is_success() {
        return Err(answer.unexpected(&what));
    }
    let body = answer.json();
    let text = |key: &str| http::printable(body[key].as_str().unwrap_or_default(), 100);
    if body["ok"].as_bool() != Some(true) {
        let code = text("error");
        let (reason, fix) = auth_test_error(&code);
        return Err(ProviderError::transient(
            reason,
            format!("{what} answered ok: false ({code}): {fix}"),
        ));
    }
    Ok(format!(
        "Slack accepted the bot token: user {:?} in team {:?}",
        text("user"),
        text("team")
    ))
}

pub(super) struct SlackProvider;

/// The Slack app of `conn` as the OAuth engine sees it, for token rotation.
fn rotating_app<'a>(
    conn: &'a Connection,
    client_secret: &'a str,
) -> Result<App<'a>, ProviderError> {
    let slack = block(&conn.spec.slack, "slack")?;
    let api = base(&parse_http("spec.slack.apiUrl", &slack.api_url)?, "");
    Ok(App {
        provider: "Slack",
        token_url: format!("{api}/oauth.v2.access"),
        client_id: &slack.client_id,
        client_secret,
        auth: ClientAuth::Form,
        refresh: Refresh {
            single_use: true,
            revokes_access_token: None,
        },
        client_credentials: false,
        username: None,
        git_url: String::new(),
        extra: Vec::new(),
        default_scope: None,
        variable: Some("SLACK_BOT_TOKEN"),
    })
}

/// Whether a token asks for a rotating bot token.
fn rotates(request: &Request<'_>) -> bool {
    request.token.spec.oauth.is_some()
}

#[async_trait]
impl Provider for SlackProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::Slack
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let slack = block(&spec.slack, "slack")?;
        parse_http("spec.slack.apiUrl", &slack.api_url)?;
        Ok(Validated {
            summary: format!("Slack app {}", slack.client_id),
        })
    }

    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        if rotates(request) {
            let grant = request
                .token
                .spec
                .oauth
                .as_ref()
                .and_then(|o| o.refresh_token.as_ref());
            if grant.is_none() {
                return Err(ProviderError::config(
                    crate::conditions::reasons::INVALID_SPEC,
                    "spec.oauth.refreshToken: a rotating Slack bot token is refreshed from the \
                     app's refresh token (from its installation with token rotation on); name \
                     the Secret that holds it",
                ));
            }
            return oauth::plan(request, &rotating_app(request.connection, "")?);
        }
        Plan::copied(request, "Slack bot token", SecretFormat::Opaque)
    }

    fn before_mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
    ) -> Result<Vec<super::SecretWrite>, ProviderError> {
        match rotates(request) {
            true => oauth::before_mint(request, &rotating_app(request.connection, "")?, secrets),
            false => Ok(Vec::new()),
        }
    }

    async fn verify(
        &self,
        conn: &Connection,
        env: &Env<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Verification {
        check(conn, env, secrets).await.into()
    }

    async fn mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Result<Minted, ProviderError> {
        let slack = block(&request.connection.spec.slack, "slack")?;
        if rotates(request) {
            let secret = secrets.text("spec.slack.clientSecret", &slack.client_secret)?;
            let app = rotating_app(request.connection, secret.trim())?;
            return oauth::mint(request, &app, secrets).await;
        }
        let token = secrets
            .text("spec.slack.botToken", &slack.bot_token)?
            .trim();
        Ok(Minted::credential(Credential::SlackBot {
            token: token.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_tokens_missing_scopes_and_bad_tokens_get_their_own_reasons() {
        assert_eq!(auth_test_error("token_revoked").0, "TokenRevoked");
        assert_eq!(auth_test_error("account_inactive").0, "TokenRevoked");
        assert_eq!(auth_test_error("missing_scope").0, "InsufficientScope");
        assert_eq!(auth_test_error("invalid_auth").0, "AuthenticationFailed");
        assert_eq!(auth_test_error("something_new").0, "AuthenticationFailed");
    }
}
