//! Slack apps: the bot token as `SLACK_BOT_TOKEN`. It is long-lived (Slack rotates bot
//! tokens only for apps with token rotation, which needs the OAuth engine): copied only where
//! the connection allows. The live check is `auth.test`, whose failures arrive as HTTP 200
//! with `ok: false`.

use async_trait::async_trait;

use super::http::{self, AUTHENTICATION_FAILED, INSUFFICIENT_SCOPE, TOKEN_REVOKED};
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
        Plan::copied(request, "Slack bot token", SecretFormat::Opaque)
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
