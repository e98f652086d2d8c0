//! The OAuth 2.0 token endpoint's answer (RFC 6749 section 5), read the same way for every
//! OAuth kind, with the deviations real providers have: errors sent with HTTP 200 (GitHub),
//! `expires_in` as a string (some Azure and Bitbucket answers), Slack's `ok: false`, and
//! refresh tokens that do or do not rotate. Pure: the caller sends the request (through
//! [`super::http`], which caps the body and the wait) and hands the status and body here.
//!
//! An error answer says what to do next: `invalid_grant` and its relatives mean the user's grant
//! is gone ([`REAUTHORIZATION_REQUIRED`], permanent: retrying cannot help, and the still-valid
//! access token is kept until it lapses), `invalid_client` means the connection's client
//! credentials are wrong (permanent), `slow_down` and server errors are transient.

use std::time::Duration;

mod device;
mod grant;
mod kind;

pub use device::{
    DEVICE_GRANT, DeviceCode, MAX_INTERVAL as MAX_POLL_INTERVAL, Poll, read_device_code, read_poll,
};

pub use grant::{
    App, Cached, ClientAuth, GRANT_KEY_SUFFIXES, Refresh, before_mint, cached_access_token_key,
    mint, plan, reusable, verify,
};
pub use kind::{OAuthKind, SignIn};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;

use super::ProviderError;
use super::http::{AUTHENTICATION_FAILED, SERVER_ERROR};

/// At most 200 printable characters of a provider's text.
fn printable(s: &str) -> String {
    super::http::printable(s, 200)
}
use crate::conditions::reasons;

/// The user's grant (a refresh token or a device code's approval) is gone: someone must sign in
/// again (`patchbay login`).
pub const REAUTHORIZATION_REQUIRED: &str = "ReauthorizationRequired";
/// The grant changed while a mint was using it (another writer, or its shared access token
/// lapsed in between): transient, decided again on the next attempt.
pub const GRANT_CHANGED: &str = "GrantChanged";
/// The provider refused the grant type or the scope for this client: the application's settings
/// must change.
pub const GRANT_NOT_ALLOWED: &str = "GrantNotAllowed";

/// The longest lifetime believed from `expires_in`: a larger or absurd value is read as this,
/// so a hostile answer cannot push renewal past a day.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(24 * 3600);
/// The lifetime assumed when the answer gives none (RFC 6749 leaves it to documentation; an hour
/// is what every provider here documents).
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3600);

/// A successful token answer. `Debug` shows no token.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The access token.
    pub access_token: String,
    /// `Bearer` unless the provider says otherwise.
    pub token_type: String,
    /// The access token's lifetime as the provider gave it (clamped to [`MAX_EXPIRES_IN`]), or
    /// [`DEFAULT_EXPIRES_IN`] when it gave none.
    pub expires_in: Duration,
    /// A new refresh token, when the provider rotates or issues one.
    pub refresh_token: Option<String>,
    /// The scope granted, when the provider says (it may be narrower than asked).
    pub scope: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

impl Tokens {
    /// When the access token expires, counted from `sent_at` (when the request left, so the
    /// time the answer took is never added to the token's life).
    pub fn expires_at(&self, sent_at: Timestamp) -> Timestamp {
        let d = SignedDuration::try_from(self.expires_in).unwrap_or(SignedDuration::ZERO);
        sent_at.saturating_add(d).unwrap_or(sent_at)
    }
}

/// Reads a token endpoint's answer: `status` and `body` as received, `what` naming the endpoint
/// for messages (e.g. `the GitLab token endpoint`).
pub fn read_answer(status: StatusCode, body: &[u8], what: &str) -> Result<Tokens, ProviderError> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = json["error"].as_str().map(printable);
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        let description = json["error_description"].as_str().map(printable);
        return Err(grant_error(&code, description.as_deref(), what));
    }
    if json["ok"] == Value::Bool(false) {
        return Err(grant_error("unknown_error", None, what));
    }
    if !status.is_success() {
        // Not an OAuth answer (a gateway's page, say): whether the provider acted is unknown.
        return Err(ProviderError::transient(
            reasons::INVALID_RESPONSE,
            format!(
                "{what} answered HTTP {} without an OAuth answer",
                status.as_u16()
            ),
        ));
    }
    let text = |key: &str| json[key].as_str().map(str::trim).filter(|t| !t.is_empty());
    let Some(access_token) = text("access_token") else {
        return Err(ProviderError::transient(
            reasons::INVALID_RESPONSE,
            format!(
                "{what} answered HTTP {} without an access_token",
                status.as_u16()
            ),
        ));
    };
    Ok(Tokens {
        access_token: access_token.to_owned(),
        token_type: text("token_type").map_or("Bearer".into(), printable),
        expires_in: expires_in(&json["expires_in"]),
        refresh_token: text("refresh_token").map(str::to_owned),
        scope: text("scope").map(printable),
    })
}

/// `expires_in` as a number or a string of digits; missing, negative or unreadable gives the
/// default, and anything over [`MAX_EXPIRES_IN`] is clamped.
fn expires_in(v: &Value) -> Duration {
    expires_in_seconds(v).map_or(DEFAULT_EXPIRES_IN, |s| {
        Duration::from_secs(s).min(MAX_EXPIRES_IN)
    })
}

/// The seconds of a token answer's `expires_in` (OAuth, and the Docker token protocol), read as
/// a number or a string of digits (a fraction is cut, a huge number saturates); `None` when it
/// is missing, negative or unreadable. The caller applies its default and its ceiling.
pub fn expires_in_seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// What an OAuth error code means for the user, and whether retrying can help.
pub fn grant_error(code: &str, description: Option<&str>, what: &str) -> ProviderError {
    let detail = description.map_or(String::new(), |d| format!(" ({d})"));
    let said = format!("{what} answered {code}{detail}");
    match code {
        "invalid_grant"
        | "expired_token"
        | "access_denied"
        | "invalid_token"
        | "token_revoked"
        | "bad_refresh_token"
        | "invalid_refresh_token"
        | "refresh_token_expired" => ProviderError::config(
            REAUTHORIZATION_REQUIRED,
            format!(
                "{said}: the grant is no longer valid; sign in again with `patchbay login` and \
                 replace the refresh token Secret"
            ),
        ),
        "invalid_client" | "unauthorized" | "invalid_client_id" | "bad_client_secret" => {
            ProviderError::config(
                AUTHENTICATION_FAILED,
                format!("{said}: check the connection's client ID and client secret"),
            )
        }
        "unauthorized_client" | "unsupported_grant_type" | "invalid_scope" => {
            ProviderError::config(
                GRANT_NOT_ALLOWED,
                format!(
                    "{said}: the application is not allowed this grant or scope; change the \
                     application's settings or the requested scope"
                ),
            )
        }
        "slow_down" | "temporarily_unavailable" | "server_error" | "ratelimited" => {
            let mut e = ProviderError::transient(SERVER_ERROR, said);
            e.retry_after = Some(Duration::from_secs(30));
            e
        }
        _ => ProviderError::transient(SERVER_ERROR, said),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(status: u16, body: &str) -> Result<Tokens, ProviderError> {
        read_answer(
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            "the token endpoint",
        )
    }

    #[test]
    fn a_standard_answer_gives_the_tokens_and_their_lifetime() {
        let t = read(
            200,
            r#"{"access_token":"at-1","token_type":"bearer","expires_in":7200,
                "refresh_token":"rt-2","scope":"repo read"}"#,
        )
        .unwrap();
        assert_eq!(t.access_token, "at-1");
        assert_eq!(t.token_type, "bearer");
        assert_eq!(t.expires_in, Duration::from_secs(7200));
        assert_eq!(t.refresh_token.as_deref(), Some("rt-2"));
        assert_eq!(t.scope.as_deref(), Some("repo read"));
        let sent = Timestamp::from_second(1_000).unwrap();
        assert_eq!(t.expires_at(sent), Timestamp::from_second(8_200).unwrap());
    }

    #[test]
    fn expires_in_as_a_string_missing_or_absurd_is_read_safely() {
        let life = |v: &str| {
            read(200, &format!(r#"{{"access_token":"a"{v}}}"#))
                .unwrap()
                .expires_in
        };
        assert_eq!(life(r#","expires_in":"3599""#), Duration::from_secs(3599));
        assert_eq!(life(""), DEFAULT_EXPIRES_IN);
        assert_eq!(life(r#","expires_in":-5"#), DEFAULT_EXPIRES_IN);
        assert_eq!(life(r#","expires_in":"soon""#), DEFAULT_EXPIRES_IN);
        assert_eq!(life(r#","expires_in":1e300"#), MAX_EXPIRES_IN);
        assert_eq!(
            life(r#","expires_in":18446744073709551615"#),
            MAX_EXPIRES_IN
        );
    }

    #[test]
    fn an_error_sent_with_http_200_is_still_an_error() {
        let e = read(200, r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#)
            .unwrap_err();
        assert_eq!(e.reason, SERVER_ERROR);
        assert!(e.message.contains("bad_verification_code"), "{}", e.message);
        let e = read(200, r#"{"ok":false,"error":"invalid_refresh_token"}"#).unwrap_err();
        assert!(e.message.contains("invalid_refresh_token"), "{}", e.message);
        let e = read(200, r#"{"ok":false}"#).unwrap_err();
        assert!(e.message.contains("unknown_error"), "{}", e.message);
    }

    #[test]
    fn a_lost_grant_requires_reauthorization_and_is_not_retried() {
        for code in [
            "invalid_grant",
            "expired_token",
            "access_denied",
            "token_revoked",
        ] {
            let e = read(400, &format!(r#"{{"error":"{code}"}}"#)).unwrap_err();
            assert_eq!(e.reason, REAUTHORIZATION_REQUIRED, "{code}");
            assert!(e.permanent, "{code}");
            assert!(e.message.contains("patchbay login"), "{}", e.message);
        }
    }

    #[test]
    fn client_and_grant_type_errors_say_what_to_change() {
        let e = read(401, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!((e.reason, e.permanent), (AUTHENTICATION_FAILED, true));
        assert!(e.message.contains("client secret"), "{}", e.message);
        let e = read(400, r#"{"error":"unauthorized_client"}"#).unwrap_err();
        assert_eq!((e.reason, e.permanent), (GRANT_NOT_ALLOWED, true));
        let e = read(400, r#"{"error":"slow_down"}"#).unwrap_err();
        assert!(!e.permanent && e.retry_after.is_some());
    }

    #[test]
    fn answers_without_a_token_or_with_garbage_are_transient() {
        let e = read(200, r#"{"token_type":"bearer"}"#).unwrap_err();
        assert_eq!(e.reason, reasons::INVALID_RESPONSE);
        let e = read(502, "<html>bad gateway</html>").unwrap_err();
        assert_eq!((e.reason, e.permanent), (reasons::INVALID_RESPONSE, false));
        let e = read(503, r#"{"error":"temporarily_unavailable"}"#).unwrap_err();
        assert_eq!((e.reason, e.permanent), (SERVER_ERROR, false));
        let e = read(200, "\u{0}\u{1}garbage").unwrap_err();
        assert_eq!(e.reason, reasons::INVALID_RESPONSE);
    }

    #[test]
    fn provider_text_is_cut_and_stripped_of_control_characters() {
        let long = "x".repeat(5000);
        let body =
            format!(r#"{{"error":"invalid_grant","error_description":"{long}\n\u001b[31m"}}"#);
        let e = read(400, &body).unwrap_err();
        assert!(e.message.len() < 600, "{}", e.message.len());
        assert!(!e.message.contains('\u{1b}'));
    }

    #[test]
    fn debug_output_never_shows_the_tokens() {
        let t = read(
            200,
            r#"{"access_token":"at-secret","refresh_token":"rt-secret"}"#,
        )
        .unwrap();
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("at-secret") && !shown.contains("rt-secret"),
            "{shown}"
        );
    }
}
