//! The server: hyper 1 (HTTP/1.1, plain text) over a loopback listener. Thin on purpose:
//! it reads the request, locks the store for the handler, and writes JSON or a watch stream.

use super::admin;
use super::faults::RequestKind;
use super::handlers::{self, Outcome};
use super::state::Shared;
use crate::apiserver::error::ApiError;
use crate::apiserver::request::{ApiRequest, Method};
use crate::apiserver::verbs::watch;
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
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

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
    respond_as(code, body, "application/json")
}

fn respond_as(code: u16, body: Body, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() =
        hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
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
    if let Some(r) = admin::handle(&shared, &api) {
        return Ok(respond_as(
            r.code,
            Full::new(r.body).boxed(),
            r.content_type,
        ));
    }
    if let Some(kind) = RequestKind::of(&api) {
        let (delay, failure) = {
            let mut c = shared.control();
            c.counters.record(kind.clone());
            let roll = c.roll();
            (c.faults.delay(&kind), c.faults.failure(&kind, roll))
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(e) = failure {
            let body = Bytes::from(e.to_status().to_string());
            return Ok(respond(e.code, Full::new(body).boxed()));
        }
    }
    // A bug in a handler must surface as a 500 Status, not as a dropped connection.
    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handlers::handle(&mut shared.lock(), &api, &shared.address)
    }));
    let outcome = match handled {
        Ok(o) => o,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let e = ApiError::internal(format!(
                "emulator bug handling {} {}: {what}",
                parts.method, api.path
            ));
            return Ok(respond(
                e.code,
                Full::new(Bytes::from(e.to_status().to_string())).boxed(),
            ));
        }
    };
    let spec = match outcome {
        Outcome::Reply(r) => {
            return Ok(respond_as(
                r.code,
                Full::new(r.body).boxed(),
                r.content_type,
            ));
        }
        Outcome::Watch(spec) => spec,
    };
    let started = watch::start(&shared.lock(), &spec);
    let (tx, rx) = mpsc::channel(1024);
    match started {
        Ok(s) => {
            let ctl = watch::RunControl {
                bookmark_every: shared.bookmark_interval,
                shutdown: shared.shutdown.clone(),
                cut: shared.cut.subscribe(),
            };
            tokio::spawn(watch::run(spec, s, tx, ctl));
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
pub(in crate::apiserver) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
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
