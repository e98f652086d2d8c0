//! The HTTP side: listeners that can be closed and reopened (the "down" switch), one hyper
//! HTTP/1 connection per task, and the per-request pipeline: count, delay, fail, limit, answer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::faults::{Down, fault_reply};
use super::model::State;
use super::reply::Reply;
use super::route;
use super::routes::{Route, handle};
use super::time::http_date;
use super::tokens::new_token;

/// State shared by the listeners, the connections and the test's handle.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// The "down" switch, watched by the listeners.
    pub(crate) down: watch::Sender<Down>,
    /// The listeners' addresses, probed to confirm the switch took effect.
    pub(crate) addrs: Vec<SocketAddr>,
    /// HTTPS with this configuration (a certificate of a private CA), else plain HTTP.
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Shared {
    /// The state, even if a panicking test thread poisoned the lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Which URL layout a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// github.com: routes at the root, and also under `/api/v3`.
    DotCom,
    /// GitHub Enterprise Server: routes only under `/api/v3`.
    Enterprise,
}

/// Dropping the connection instead of answering: hyper closes it when a service fails.
#[derive(Debug)]
struct Disconnect;

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated disconnect")
    }
}

impl std::error::Error for Disconnect {}

/// Accepts connections until shutdown; closes the listener while the switch says `Refuse`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    layout: Layout,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut down = shared.down.subscribe();
    let mut listener = Some(listener);
    let mut connections = JoinSet::new();
    loop {
        let refusing = *down.borrow_and_update() == Down::Refuse;
        if refusing {
            listener = None;
            connections.abort_all();
        } else if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(bound) => listener = Some(bound),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            changed = down.changed() => if changed.is_err() { break },
            accepted = accept(listener.as_ref()) => {
                if let Ok((stream, _)) = accepted {
                    let shared = shared.clone();
                    connections.spawn(serve_tls_or_plain(stream, layout, shared));
                }
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Serves one connection, after a TLS handshake when the simulator speaks HTTPS (a client that
/// does not trust the certificate ends the connection there).
async fn serve_tls_or_plain(stream: tokio::net::TcpStream, layout: Layout, shared: Arc<Shared>) {
    match shared.tls.clone() {
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve(tls, layout, shared).await;
            }
        }
        None => serve(stream, layout, shared).await,
    }
}

async fn serve<S>(stream: S, layout: Layout, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| respond(shared.clone(), layout, request));
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The path without the GHES prefix, or `None` when this layout does not serve it.
fn api_path(layout: Layout, path: &str) -> Option<&str> {
    let stripped = path
        .strip_prefix("/api/v3")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'));
    match (layout, stripped) {
        (_, Some(rest)) => Some(rest),
        (Layout::DotCom, None) => Some(path),
        (Layout::Enterprise, None) => None,
    }
}

async fn respond(
    shared: Arc<Shared>,
    layout: Layout,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Disconnect> {
    let (parts, body) = request.into_parts();
    // GitHub refuses bodies far smaller than this; the limit only keeps the simulator safe.
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = api_path(layout, parts.uri.path());
    let route = path.and_then(|p| Route::parse(&parts.method, p));
    let name = route.as_ref().map_or(route::UNMATCHED, Route::name);
    let latency = {
        let mut state = shared.lock();
        *state.calls.entry(name).or_default() += 1;
        state.config.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    while *shared.down.borrow() == Down::Hang {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut state = shared.lock();
    let now = state.now();
    let limit = state.rate.limit;
    let down = *shared.down.borrow();
    let reply = match down {
        Down::Refuse => return Err(Disconnect),
        Down::Unavailable => Reply::error(503, "Service Unavailable"),
        Down::Up | Down::Hang => match state.faults.take(name) {
            Some(fault) => fault_reply(&fault, now, limit).ok_or(Disconnect)?,
            None if !state.rate.take(now) => state.rate.exhausted(now),
            None => match route {
                Some(route) => {
                    let query = parts.uri.query().unwrap_or_default();
                    handle(&mut state, route, &parts.headers, query, &body)
                }
                None => Reply::not_found(),
            },
        },
    };
    let rate_headers = state.rate.headers(now);
    drop(state);
    Ok(into_response(reply, rate_headers, now))
}

fn into_response(
    reply: Reply,
    rate_headers: Vec<(&'static str, String)>,
    now: i64,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("date", http_date(now))
        .header("x-github-api-version-selected", "2022-11-28")
        .header("x-github-media-type", "github.v3; format=json")
        .header("x-github-request-id", new_token().split_off(4));
    for (name, value) in &rate_headers {
        if reply.header(name).is_none() {
            builder = builder.header(*name, value);
        }
    }
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value);
    }
    let body = match &reply.body {
        Some(json) => {
            builder = builder.header("content-type", "application/json; charset=utf-8");
            Bytes::from(json.to_string())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Full::new(Bytes::new()));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ghes_prefix_is_stripped_and_required_only_on_the_enterprise_listener() {
        assert_eq!(api_path(Layout::DotCom, "/app"), Some("/app"));
        assert_eq!(api_path(Layout::DotCom, "/api/v3/app"), Some("/app"));
        assert_eq!(api_path(Layout::Enterprise, "/api/v3/app"), Some("/app"));
        assert_eq!(api_path(Layout::Enterprise, "/app"), None);
        assert_eq!(api_path(Layout::Enterprise, "/api/v3x/app"), None);
    }
}
