//! The HTTP server of `/metrics`, `/healthz` and `/readyz` (hyper, HTTP/1.1, GET only).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, info};

use super::Telemetry;

/// A client that sends no complete request head within this time is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The OpenMetrics text format's content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `address` and serves until the returned task is aborted. Returns the bound address
/// (port 0 picks a free one).
pub async fn serve(
    address: SocketAddr,
    telemetry: Arc<Telemetry>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    info!(address = %bound, "serving /metrics, /healthz and /readyz");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let telemetry = telemetry.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let telemetry = telemetry.clone();
                    let (method, path) =
                        (request.method().clone(), request.uri().path().to_string());
                    async move { Ok::<_, Infallible>(answer(&telemetry, &method, &path)) }
                });
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    debug!(error = %e, "metrics connection ended");
                }
            });
        }
    });
    Ok((bound, task))
}

/// The answer to `method path`.
fn answer(telemetry: &Telemetry, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match path {
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(telemetry.metrics.encode())));
            (response.headers_mut()).insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
            response
        }
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        "/readyz" if telemetry.is_ready() => plain(StatusCode::OK, "ok\n"),
        "/readyz" => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the namespace and connection caches have not synced yet\n",
        ),
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz\n",
        ),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    (response.headers_mut()).insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readyz_answers_503_until_the_caches_have_synced_and_healthz_always_200() {
        let telemetry = Telemetry::default();
        let status = |path| answer(&telemetry, &Method::GET, path).status();
        assert_eq!(status("/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status("/healthz"), StatusCode::OK);
        telemetry.caches_synced();
        assert_eq!(status("/readyz"), StatusCode::OK);
        assert_eq!(status("/metrics"), StatusCode::OK);
        assert_eq!(status("/other"), StatusCode::NOT_FOUND);
        let post = answer(&telemetry, &Method::POST, "/metrics").status();
        assert_eq!(post, StatusCode::METHOD_NOT_ALLOWED);
    }
}
