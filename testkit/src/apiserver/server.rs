//! The HTTP layer: hyper 1 (HTTP/1.1, plain text) over a loopback listener. Thin on purpose:
//! it reads the request, locks the store for the handler, and writes JSON or a watch stream.

use super::handlers::{self, Outcome};
use super::request::{ApiRequest, Method};
use super::store::Store;
use super::watch;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch as signal};

/// State shared by all connections.
pub(super) struct Shared {
    /// The store; handlers hold the lock only while computing a reply, never across I/O.
    pub store: Mutex<Store>,
    /// `host:port`, for `/api`'s serverAddressByClientCIDRs.
    pub address: String,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Flips to true (or is dropped) on shutdown.
    pub shutdown: signal::Receiver<bool>,
}

impl Shared {
    /// Locks the store; a panic in another request does not wedge the emulator.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// A response body fed line by line by a watch task.
struct WatchBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|b| Ok(Frame::data(b))))
    }
}

fn respond(code: u16, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() =
        hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn stream(lines: mpsc::Receiver<Bytes>) -> Response<Body> {
    respond(200, WatchBody(lines).boxed())
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut api = ApiRequest::new(
        Method::parse(parts.method.as_str()),
        parts.uri.path(),
        parts.uri.query(),
    );
    api.content_type = header(CONTENT_TYPE);
    api.accept = header(ACCEPT);
    api.user_agent = header(USER_AGENT);
    api.body = body;
    let outcome = handlers::handle(&mut shared.lock(), &api, &shared.address);
    let spec = match outcome {
        Outcome::Reply(r) => return Ok(respond(r.code, Full::new(r.body).boxed())),
        Outcome::Watch(spec) => spec,
    };
    let started = watch::start(&shared.lock(), &spec);
    let (tx, rx) = mpsc::channel(1024);
    match started {
        Ok(s) => {
            tokio::spawn(watch::run(
                spec,
                s,
                tx,
                shared.bookmark_interval,
                shared.shutdown.clone(),
            ));
        }
        Err(e) if e.code == 410 => {
            // The real server answers 200 and sends the 410 as an ERROR event.
            let _ = tx.try_send(watch::error_line(&e));
        }
        Err(e) => {
            return Ok(respond(
                e.code,
                Full::new(Bytes::from(e.to_status().to_string())).boxed(),
            ));
        }
    }
    Ok(stream(rx))
}

/// Accepts connections until shutdown, then lets open connections finish (bounded wait).
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let shared = shared.clone();
                let mut stop = shared.shutdown.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(shared.clone(), req));
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(tcp), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        conns.abort_all();
    }
}
