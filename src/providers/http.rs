//! One HTTP exchange with a server a tenant named, for the providers that hold a static
//! credential (registries, npm, Slack, Azure DevOps): the client (the connection's CA bundle,
//! the environment's proxy, no redirects, bounded time), a body read up to a limit, and the
//! transport failures as condition reasons that say what to fix.
//!
//! Every answer is untrusted: bodies are capped at [`MAX_BODY`], waits at
//! [`MAX_RETRY_AFTER`](super::MAX_RETRY_AFTER), and nothing of a body reaches a message
//! except short, printable excerpts.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

use super::{CaBundle, ProviderError, clamp_retry_after, network};

/// The longest one exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read.
pub const MAX_BODY: usize = 256 * 1024;

/// The condition reason of a server name that does not resolve.
pub const UNKNOWN_HOST: &str = "UnknownHost";
/// The condition reason of a server that could not be reached (the request was not sent).
pub const SERVER_UNREACHABLE: &str = "ServerUnreachable";
/// The condition reason of a request that was sent but got no (complete) answer: the server
/// may have acted on it.
pub const NO_ANSWER: &str = "NoAnswer";
/// The condition reason of a server that refused the connection's credential.
pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
/// The condition reason of a credential the server says was revoked or has expired.
pub const TOKEN_REVOKED: &str = "TokenRevoked";
/// The condition reason of a credential that lacks a scope the call needs.
pub const INSUFFICIENT_SCOPE: &str = "InsufficientScope";
/// The condition reason of a server that answered 5xx, 429 or another unexpected status.
pub const SERVER_ERROR: &str = "ServerError";

/// The HTTP client for calls that trust `bundle` (besides the system's and the operator's CAs).
pub fn client(bundle: Option<&CaBundle>) -> Result<reqwest::Client, ProviderError> {
    network::process().http(bundle, || {
        // Redirects are not followed: a redirect would carry the credential to a server the
        // connection does not name.
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
    })
}

/// A server's answer, its body read up to [`MAX_BODY`].
pub struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error for an answer the caller did not expect: 429 and 5xx are transient (with the
    /// server's Retry-After, clamped), anything else names the status; `what` says what was
    /// asked, e.g. `the npm registry's /-/whoami`.
    pub fn unexpected(&self, what: &str) -> ProviderError {
        let mut e = ProviderError::transient(
            SERVER_ERROR,
            format!(
                "{what} answered HTTP {}{}",
                self.status.as_u16(),
                self.excerpt()
            ),
        );
        if self.status == StatusCode::TOO_MANY_REQUESTS || self.status.is_server_error() {
            let wait = (self.header("retry-after"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            e.retry_after = clamp_retry_after(wait.or(Some(Duration::from_secs(30))));
        }
        e
    }

    /// `: <message>` from a JSON body's `error`/`message`/`errors[0].message`, cut to 200
    /// printable characters; empty when there is none.
    pub fn excerpt(&self) -> String {
        let json = self.json();
        let text = [
            &json["errors"][0]["message"],
            &json["message"],
            &json["error"],
        ]
        .into_iter()
        .find_map(Value::as_str)
        .unwrap_or_default();
        let clean = printable(text, 200);
        match clean.is_empty() {
            true => String::new(),
            false => format!(": {clean}"),
        }
    }
}

/// At most `max_chars` characters of text a provider sent, without control characters: what of
/// an untrusted answer may stand in a condition message.
pub fn printable(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// Sends `request` to `server` (named in errors; never the URL's query) and reads the answer.
pub async fn send(request: RequestBuilder, server: &str) -> Result<Answer, ProviderError> {
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(server, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = (response.chunk().await).map_err(|e| transport_error(server, &e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ProviderError::transient(
                crate::conditions::reasons::INVALID_RESPONSE,
                format!("{server} answered with more than {} KiB", MAX_BODY / 1024),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A request that got no answer, as what to fix: an unknown host, an untrusted certificate, or
/// a server that does not answer.
pub fn transport_error(server: &str, e: &reqwest::Error) -> ProviderError {
    let cause = innermost(e);
    if network::is_certificate_failure(&cause) {
        return network::certificate_not_trusted(server, &cause);
    }
    let lower = cause.to_ascii_lowercase();
    let dns = [
        "dns error",
        "failed to lookup address",
        "name or service not known",
    ];
    if dns.iter().any(|m| lower.contains(m)) {
        return ProviderError::transient(
            UNKNOWN_HOST,
            format!("{server}: the host name does not resolve ({cause}); check the URL"),
        );
    }
    if e.is_connect() {
        return ProviderError::transient(
            SERVER_UNREACHABLE,
            format!("{server} cannot be reached: {cause}"),
        );
    }
    ProviderError::transient(NO_ANSWER, format!("{server} did not answer: {cause}"))
}

/// Why a request got no answer, from the innermost error that says, without the URL.
fn innermost(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text: String = cause.to_string().chars().take(200).collect();
    if text.is_empty() {
        "no answer".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_rate_limited_answer_is_retried_no_sooner_than_asked_and_no_later_than_an_hour() {
        let e = answer(429, &[("retry-after", "120")], "").unexpected("the registry");
        assert_eq!(e.retry_after, Some(Duration::from_secs(120)));
        assert!(!e.permanent);
        let e = answer(503, &[("retry-after", "99999999")], "").unexpected("the registry");
        assert_eq!(e.retry_after, Some(super::super::MAX_RETRY_AFTER));
    }

    #[test]
    fn an_excerpt_of_a_hostile_body_is_short_and_printable() {
        let long = format!("{{\"message\": \"bad\\u0007{}\"}}", "x".repeat(5000));
        let e = answer(400, &[], &long).unexpected("the server");
        assert!(e.message.len() < 300, "{}", e.message);
        assert!(!e.message.contains('\u{7}'));
        assert!(e.message.starts_with("the server answered HTTP 400: bad"));
    }
}
