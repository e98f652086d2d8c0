//! The loopback redirect the command-line sign-ins use (RFC 8252 section 7.3): a listener on
//! 127.0.0.1 that serves an optional start page at `/` and takes the provider's redirect at
//! `/callback`, accepting it only with the `state` it was given. Used by `patchbay login` (the
//! authorization code flow with PKCE) and `patchbay github-app create` (the manifest flow).

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How long a person has to finish in the browser.
pub const BROWSER_WAIT: Duration = Duration::from_secs(15 * 60);

/// `words` × 64 random bits as hex: from the standard library's per-process random hasher
/// keys (fresh for every hasher), mixed with the time. For `state` values and PKCE verifiers.
pub fn random_hex(words: usize) -> String {
    (0..words)
        .map(|_| {
            let mut h = RandomState::new().build_hasher();
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            h.write_u128(nanos);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// What came back to `/callback`.
type Outcome = Result<String, String>;

/// Serves `listener` until the provider redirects to `/callback` with `state` and a `code`
/// (returned) or an `error` (returned as `Err`), or [`BROWSER_WAIT`] passes. `start_page` is
/// served at `/` when given.
pub async fn wait_for_code(
    listener: TcpListener,
    start_page: Option<String>,
    state: String,
) -> Result<String, String> {
    let (outcomes, mut received) = mpsc::channel::<Outcome>(1);
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (page, state, outcomes) = (start_page.clone(), state.clone(), outcomes.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let answer = answer(&request, page.as_deref(), &state, &outcomes);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let outcome = tokio::time::timeout(BROWSER_WAIT, received.recv()).await;
    server.abort();
    match outcome {
        Ok(Some(outcome)) => outcome,
        _ => Err(format!(
            "the browser did not come back within {} min; run the command again",
            BROWSER_WAIT.as_secs() / 60
        )),
    }
}

/// A page for the browser.
fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The start page at `/`, the redirect at `/callback`.
fn answer(
    request: &hyper::Request<hyper::body::Incoming>,
    start_page: Option<&str>,
    state: &str,
    outcomes: &mpsc::Sender<Outcome>,
) -> Response<Full<Bytes>> {
    match (request.uri().path(), start_page) {
        ("/", Some(page)) => html(StatusCode::OK, page.to_owned()),
        ("/callback", _) => {
            let query = request.uri().query().unwrap_or_default();
            let param = |name: &str| {
                ::url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            if param("state").as_deref() != Some(state) {
                let page = "<p>The state does not match this sign-in; start again.</p>";
                return html(StatusCode::BAD_REQUEST, page.into());
            }
            if let Some(error) = param("error") {
                let error = crate::providers::http::printable(&error, 100);
                let _ = outcomes.try_send(Err(format!("the provider answered {error}")));
                return html(StatusCode::OK, format!("<p>Not signed in: {error}.</p>"));
            }
            match param("code").filter(|c| !c.is_empty() && c.len() <= 512) {
                Some(code) => {
                    let _ = outcomes.try_send(Ok(code));
                    let page = "<p>Done: patchbay has what it needs. You can close this tab.</p>";
                    html(StatusCode::OK, page.into())
                }
                None => html(
                    StatusCode::BAD_REQUEST,
                    "<p>No code in the redirect.</p>".into(),
                ),
            }
        }
        _ => html(StatusCode::NOT_FOUND, "<p>Not found.</p>".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_are_long_and_do_not_repeat() {
        let (a, b) = (random_hex(2), random_hex(2));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(random_hex(4).len(), 64);
    }
}
