//! Watches: newline-delimited JSON events from a resourceVersion, with selectors, bookmarks,
//! streaming initial events (`sendInitialEvents`), `timeoutSeconds`, and 410 Gone (as an
//! `ERROR` event carrying a Status, as the real server sends it) for a compacted
//! resourceVersion or a watcher too slow to keep up.

use super::convert;
use super::listing::ListFilter;
use super::reply::object_bytes;
use super::table;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::request::ApiRequest;
use crate::apiserver::store::meta::meta_str;
use crate::apiserver::store::resources::{GroupResource, ResourceInfo};
use crate::apiserver::store::{Change, ChangeType, Obj, Store};
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// What a watch request asks for.
pub struct WatchSpec {
    /// The watched resource, at the version requested.
    pub ri: Arc<ResourceInfo>,
    /// Where its objects are stored (differs for converted resources).
    pub storage: GroupResource,
    /// Namespace from the path, or None for all namespaces.
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub filter: ListFilter,
    /// `resourceVersion`: None or 0 means "current state first".
    pub from: Option<u64>,
    /// `allowWatchBookmarks`
    pub bookmarks: bool,
    /// `sendInitialEvents`: current state, then a bookmark marking its end.
    pub initial_events: bool,
    /// `timeoutSeconds`
    pub timeout: Option<Duration>,
    /// When the client asked for Tables (`kubectl get -w`): the `includeObject` choice.
    pub table: Option<String>,
    /// When the client asked for metadata only (`PartialObjectMetadata`).
    pub metadata_only: bool,
}

impl WatchSpec {
    /// From a watch request on a resource.
    pub fn from_request(
        storage: GroupResource,
        req: &ApiRequest,
        ri: Arc<ResourceInfo>,
        namespace: Option<String>,
    ) -> ApiResult<Self> {
        let from =
            match req.param("resourceVersion") {
                None | Some("0") => None,
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
        let initial_events = req.flag("sendInitialEvents");
        if initial_events
            && !(req.flag("allowWatchBookmarks")
                && req.param("resourceVersionMatch") == Some("NotOlderThan"))
        {
            return Err(ApiError::bad_request(
                "sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
            ));
        }
        Ok(WatchSpec {
            ri,
            storage,
            namespace,
            filter: ListFilter::from_request(req)?,
            from,
            bookmarks: req.flag("allowWatchBookmarks"),
            initial_events,
            timeout: req
                .param("timeoutSeconds")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_secs),
            metadata_only: req.wants_metadata(),
            table: req
                .wants_table()
                .then(|| req.param("includeObject").unwrap_or("Metadata").to_string()),
        })
    }

    fn visible(&self, obj: &Obj) -> bool {
        let ns = meta_str(&obj.value, "namespace");
        self.namespace.as_deref().is_none_or(|want| want == ns)
            && self.filter.matches_served(&self.ri, &obj.value)
    }

    fn event_line(&self, kind: &str, obj: &Obj) -> Bytes {
        let body = match &self.table {
            None if self.metadata_only => Bytes::from(
                serde_json::to_vec(&table::partial_metadata(&obj.value)).unwrap_or_default(),
            ),
            None => object_bytes(&self.ri, obj),
            Some(include) => {
                let rv = meta_str(&obj.value, "resourceVersion");
                let v = convert::from_storage(&self.ri, &obj.value);
                let t = table::table(&self.ri, &[&v], rv, None, include);
                Bytes::from(serde_json::to_vec(&t).unwrap_or_default())
            }
        };
        let mut b = BytesMut::with_capacity(body.len() + 32);
        b.put_slice(b"{\"type\":\"");
        b.put_slice(kind.as_bytes());
        b.put_slice(b"\",\"object\":");
        b.put_slice(&body);
        b.put_slice(b"}\n");
        b.freeze()
    }

    /// The line for a change, if this watch sees it (selector transitions become ADDED/DELETED).
    fn change_line(&self, c: &Change) -> Option<Bytes> {
        if c.resource != self.storage {
            return None;
        }
        let now = self.visible(&c.object);
        let before = c.previous.as_ref().is_some_and(|p| self.visible(p));
        let kind = match (c.kind, before, now) {
            (ChangeType::Deleted, _, true) => "DELETED",
            (ChangeType::Added, _, true) => "ADDED",
            (ChangeType::Modified, true, true) => "MODIFIED",
            (ChangeType::Modified, false, true) => "ADDED",
            (ChangeType::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some(self.event_line(kind, &c.object))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let ev = json!({"type": "BOOKMARK", "object": {"kind": self.ri.kind, "apiVersion": self.ri.api_version(), "metadata": md}});
        let mut v = serde_json::to_vec(&ev).unwrap_or_default();
        v.push(b'\n');
        Bytes::from(v)
    }
}

/// The start of a watch: lines to send first, the subscription, and the rv they reach.
pub struct Started {
    first: Vec<Bytes>,
    rx: broadcast::Receiver<Arc<Change>>,
    rv: u64,
}

/// The `ERROR` event line for an error (410 Expired and friends).
pub fn error_line(e: &ApiError) -> Bytes {
    let mut v =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// Starts a watch under the store lock: no change is missed or sent twice.
pub fn start(store: &Store, spec: &WatchSpec) -> ApiResult<Started> {
    let rv = store.resource_version();
    match spec.from {
        Some(from) if !spec.initial_events => {
            let (past, rx) = store.subscribe_from(from)?;
            let first = past.iter().filter_map(|c| spec.change_line(c)).collect();
            Ok(Started {
                first,
                rx,
                rv: past.last().map_or(from, |c| c.rv),
            })
        }
        _ => {
            let mut first: Vec<Bytes> = store
                .iter(&spec.storage, spec.namespace.as_deref(), None)
                .filter(|(_, o)| spec.filter.matches_served(&spec.ri, &o.value))
                .map(|(_, o)| spec.event_line("ADDED", o))
                .collect();
            if spec.initial_events {
                first.push(spec.bookmark(rv, true));
            }
            Ok(Started {
                first,
                rx: store.subscribe(),
                rv,
            })
        }
    }
}

/// What a running watch listens to besides the store.
pub struct RunControl {
    /// How often to send a bookmark (when the client allows them).
    pub bookmark_every: Duration,
    /// The server is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Bumped to cut every open watch stream (fault injection).
    pub cut: watch::Receiver<u64>,
}

/// Streams a started watch into `tx` until timeout, shutdown, a cut, a lagging client or
/// hang-up.
pub async fn run(spec: WatchSpec, mut s: Started, tx: mpsc::Sender<Bytes>, ctl: RunControl) {
    let RunControl {
        bookmark_every,
        mut shutdown,
        mut cut,
    } = ctl;
    for line in s.first.drain(..) {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let deadline = tokio::time::sleep(spec.timeout.unwrap_or(Duration::from_secs(1800)));
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(bookmark_every);
    ticker.tick().await;
    loop {
        let line = tokio::select! {
            _ = &mut deadline => {
                if spec.bookmarks {
                    let _ = tx.send(spec.bookmark(s.rv, false)).await;
                }
                return;
            }
            _ = shutdown.changed() => return,
            _ = cut.changed() => return,
            _ = ticker.tick() => {
                if !spec.bookmarks { continue; }
                spec.bookmark(s.rv, false)
            }
            r = s.rx.recv() => match r {
                Ok(c) => {
                    if c.rv <= s.rv { continue; }
                    s.rv = c.rv;
                    match spec.change_line(&c) { Some(l) => l, None => continue }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx.send(error_line(&ApiError::expired(s.rv, s.rv + 1))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        };
        if tx.send(line).await.is_err() {
            return;
        }
    }
}
