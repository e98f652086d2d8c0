//! The device authorization grant (RFC 8628), as `patchbay login` uses it: ask the provider for
//! a user code, let a person approve it in a browser, poll the token endpoint until they did.
//! Every answer is read as untrusted input: lifetimes and intervals are clamped, text is cut.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::grant::App;
use super::{Tokens, expires_in_seconds, grant_error, read_answer};
use crate::conditions::reasons;
use crate::providers::{Env, ProviderError, http};

/// The grant type of a device code poll.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The longest a device code is waited for, whatever the provider says.
pub const MAX_DEVICE_WAIT: Duration = Duration::from_secs(30 * 60);
/// The polling interval when the provider names none (RFC 8628 section 3.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The longest polling interval believed.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// A started device authorization.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The code the poll sends (secret: never shown).
    pub device_code: String,
    /// The code the person types.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    /// A link with the code filled in, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// How long the code lives (at most [`MAX_DEVICE_WAIT`]).
    pub expires_in: Duration,
    /// How long to wait between polls.
    pub interval: Duration,
}

impl std::fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCode")
            .field("device_code", &"<redacted>")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

/// One poll's outcome.
#[derive(Debug)]
pub enum Poll {
    /// Not approved yet: poll again after the interval.
    Pending,
    /// Poll more slowly: the interval grows by 5 s (RFC 8628 section 3.5).
    SlowDown,
    /// Approved: the tokens.
    Done(Tokens),
}

/// Reads the device authorization answer.
pub fn read_device_code(
    status: StatusCode,
    body: &[u8],
    what: &str,
) -> Result<DeviceCode, ProviderError> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(code) = json["error"].as_str().filter(|c| !c.is_empty()) {
        let description = json["error_description"]
            .as_str()
            .map(|d| http::printable(d, 200));
        return Err(grant_error(
            &http::printable(code, 100),
            description.as_deref(),
            what,
        ));
    }
    let text = |key: &str| json[key].as_str().map(str::trim).filter(|t| !t.is_empty());
    // GitHub and Entra ID say verification_uri; Google says verification_url.
    let uri = text("verification_uri").or(text("verification_url"));
    let (Some(device_code), Some(user_code), Some(uri)) =
        (text("device_code"), text("user_code"), uri)
    else {
        return Err(ProviderError::transient(
            reasons::INVALID_RESPONSE,
            format!(
                "{what} answered HTTP {} without a device code, a user code and a verification URI",
                status.as_u16()
            ),
        ));
    };
    let seconds = |key: &str, default: Duration, max: Duration| {
        expires_in_seconds(&json[key]).map_or(default, |s| Duration::from_secs(s).min(max))
    };
    Ok(DeviceCode {
        device_code: device_code.to_owned(),
        user_code: http::printable(user_code, 64),
        verification_uri: http::printable(uri, 512),
        verification_uri_complete: text("verification_uri_complete")
            .map(|u| http::printable(u, 512)),
        expires_in: seconds("expires_in", Duration::from_secs(600), MAX_DEVICE_WAIT),
        interval: seconds("interval", DEFAULT_INTERVAL, MAX_INTERVAL).max(Duration::from_secs(1)),
    })
}

/// Reads one poll's answer.
pub fn read_poll(status: StatusCode, body: &[u8], what: &str) -> Result<Poll, ProviderError> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match json["error"].as_str() {
        Some("authorization_pending") => Ok(Poll::Pending),
        Some("slow_down") => Ok(Poll::SlowDown),
        _ => read_answer(status, body, what).map(Poll::Done),
    }
}

impl App<'_> {
    /// Starts a device authorization at `url` for `scope`.
    pub async fn device_code(
        &self,
        env: &Env<'_>,
        url: &str,
        scope: Option<&str>,
    ) -> Result<DeviceCode, ProviderError> {
        let form: Vec<(&str, &str)> = scope.map(|s| ("scope", s)).into_iter().collect();
        let what = format!("the {} device authorization endpoint", self.provider);
        let answer = self.post(env, url, &form).await?;
        read_device_code(answer.status, &answer.body, &what)
    }

    /// Polls the token endpoint for `device`.
    pub async fn poll_device(
        &self,
        env: &Env<'_>,
        device: &DeviceCode,
    ) -> Result<Poll, ProviderError> {
        let form = [
            ("grant_type", DEVICE_GRANT),
            ("device_code", device.device_code.as_str()),
        ];
        let answer = self.post(env, &self.token_url, &form).await?;
        let what = format!("the {} token endpoint", self.provider);
        read_poll(answer.status, &answer.body, &what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(body: &str) -> Result<DeviceCode, ProviderError> {
        read_device_code(StatusCode::OK, body.as_bytes(), "the device endpoint")
    }

    #[test]
    fn a_device_code_answer_is_read_with_its_lifetime_and_interval_clamped() {
        let d = start(
            r#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://example.com/device",
               "expires_in":"900","interval":5}"#,
        )
        .unwrap();
        assert_eq!(d.user_code, "WDJB-MJHT");
        assert_eq!(d.expires_in, Duration::from_secs(900));
        assert_eq!(d.interval, Duration::from_secs(5));
        let d = start(
            r#"{"device_code":"dc","user_code":"u","verification_url":"https://google.example/device",
               "expires_in":99999999,"interval":0}"#,
        )
        .unwrap();
        assert_eq!(d.verification_uri, "https://google.example/device");
        assert_eq!(d.expires_in, MAX_DEVICE_WAIT);
        assert_eq!(d.interval, Duration::from_secs(1), "never a tight loop");
        assert!(!format!("{d:?}").contains("\"dc\""));
    }

    #[test]
    fn a_refused_or_garbled_start_says_so() {
        let e = start(r#"{"error":"unauthorized_client"}"#).unwrap_err();
        assert_eq!(e.reason, super::super::GRANT_NOT_ALLOWED);
        let e = start(r#"{"user_code":"u"}"#).unwrap_err();
        assert_eq!(e.reason, reasons::INVALID_RESPONSE);
    }

    #[test]
    fn polls_tell_pending_slow_down_denied_and_done_apart() {
        let poll = |body: &str| read_poll(StatusCode::BAD_REQUEST, body.as_bytes(), "t");
        assert!(matches!(
            poll(r#"{"error":"authorization_pending"}"#),
            Ok(Poll::Pending)
        ));
        assert!(matches!(
            poll(r#"{"error":"slow_down"}"#),
            Ok(Poll::SlowDown)
        ));
        let denied = poll(r#"{"error":"access_denied"}"#).unwrap_err();
        assert_eq!(denied.reason, super::super::REAUTHORIZATION_REQUIRED);
        let done = read_poll(
            StatusCode::OK,
            br#"{"access_token":"a","refresh_token":"r"}"#,
            "t",
        );
        assert!(matches!(done, Ok(Poll::Done(t)) if t.refresh_token.as_deref() == Some("r")));
    }
}
