//! A Kubernetes API emulator: an in-memory API server on 127.0.0.1 that the unmodified kube
//! client, `kube::runtime::Controller` and `kubectl` use through an ordinary kubeconfig.
//!
//! ```text
//!  kube::Client, kubectl
//!        │ HTTP/1.1 (JSON; protobuf bodies from `kubectl create` via verbs/protobuf.rs)
//!        ▼
//!  http/     server.rs (hyper) with state.rs (the store's lock, signals) and faults.rs
//!            (counters, injected faults); /emulator/ → admin.rs; handlers.rs routes to
//!            discovery.rs, openapi.rs, or a verb or watch:
//!        ▼
//!  verbs/    mod.rs (get, create, update, delete) ──▶ listing.rs (selector.rs), modify.rs
//!            (patch.rs); they and watch.rs ──▶ reply.rs: bodies (protobuf.rs) and replies
//!            (convert.rs = events.k8s.io ⇄ core Events, table.rs = kubectl's Tables)
//!        ▼
//!  objects/  lifecycle.rs, deletion.rs: what a write does (builtins.rs + pods.rs, crd.rs +
//!            crd_validation.rs, admit.rs = admission seam, validation.rs, fields.rs +
//!            fieldpath.rs = managedFields and server-side apply)
//!        ▼
//!  store/    mod.rs: objects, resourceVersion, change history (replayed and broadcast to
//!            verbs/watch.rs), indexes; resources.rs (the served kinds), meta.rs
//!        ▼
//!  error.rs (Status errors), request.rs (a request, free of HTTP): what every layer speaks
//! ```
//!
//! Each folder is one layer and imports only from the layers below it. The store and the verb
//! semantics are plain data and functions (unit-tested without HTTP); `http/server.rs` is the
//! only module doing I/O.
//!
//! Emulated: discovery, the built-in kinds Namespace, Secret, ConfigMap, ServiceAccount, Pod
//! (stored, never run), Event (core and events.k8s.io), Lease and CustomResourceDefinition,
//! custom resources served from CRDs, get/list/watch/create/update/patch/apply/delete with the real server's Status errors,
//! finalizers, namespace termination and ownerReference garbage collection.
//!
//! For tests: [`Faults`] (a share of writes failing with 409 or 500, added latency),
//! [`Emulator::cut_watches`], [`Emulator::compact_history`] (watchers then get 410) and
//! per-verb/per-resource [`Counters`], from Rust or over HTTP under `/emulator/` (`http/admin.rs`).
//!
//! Not emulated: authentication and RBAC (every request is allowed), admission webhooks,
//! conversion webhooks, running pods, and built-in kinds other than those above.
//! `testkit/README.md` lists where it differs from a real kube-apiserver.

pub mod error;
mod http;
mod objects;
mod request;
mod store;
mod verbs;

pub use http::faults::{Counters, Faults, RequestKind};
use http::server;
use http::state::{Control, Shared};
use objects::lifecycle;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Store, StoreOptions, meta};
use tokio::sync::watch as signal;
use verbs::convert;

/// How to run an [`Emulator`].
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// How many changes are kept for watches to resume from; a watch from an older
    /// resourceVersion gets 410 Gone.
    pub history_window: usize,
    /// How often a watch that allows bookmarks receives one.
    pub bookmark_interval: Duration,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            port: 0,
            history_window: StoreOptions::default().history_window,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// A running emulator. Dropping it stops the server; [`Emulator::shutdown`] also waits.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: signal::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

const NAME: &str = "patchbay-emulator";

impl Emulator {
    /// Starts an emulator with the namespaces a fresh cluster has (`default`, `kube-system`,
    /// `kube-public`, `kube-node-lease`).
    pub async fn start(opts: EmulatorOptions) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let mut store = Store::new(StoreOptions {
            history_window: opts.history_window,
        });
        let ns = store
            .registry
            .get("", "v1", "namespaces")
            .expect("namespaces are built in");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"metadata": {"name": name}});
            store
                .create(&ns, "", obj, lifecycle::Manager::Update("kube-apiserver"))
                .map_err(|e| std::io::Error::other(format!("creating namespace {name}: {e}")))?;
        }
        let (stop, shutdown) = signal::channel(false);
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            address: addr.to_string(),
            bookmark_interval: opts.bookmark_interval,
            shutdown,
            control: Mutex::new(Control::default()),
            cut: signal::channel(0).0,
        });
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(Emulator {
            shared,
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The server URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (context `patchbay-emulator`, namespace `default`, no credentials).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {NAME}\n  cluster:\n    server: {url}\n\
             contexts:\n- name: {NAME}\n  context:\n    cluster: {NAME}\n    user: {NAME}\n    namespace: default\n\
             current-context: {NAME}\nusers:\n- name: {NAME}\n  user: {{}}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`Emulator::kubeconfig_yaml`] to `path`, creating parent directories.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// A kube client for this emulator (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        let uri: hyper::Uri = self
            .url()
            .parse()
            .expect("a socket address forms a valid URI");
        let config = kube::Config::new(uri);
        kube::Client::try_from(config).expect("a plain-HTTP loopback client needs no TLS setup")
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().resource_version()
    }

    /// Forgets the change history: watches resuming from any earlier resourceVersion get 410.
    pub fn compact_history(&self) {
        self.shared.lock().compact();
    }

    /// Creates an object in-process (no HTTP), as a POST would: the resource comes from its
    /// `apiVersion` and `kind`, the namespace from its metadata. For seeding tests quickly
    /// and for the sandbox's manifests.
    pub fn create_object(
        &self,
        obj: serde_json::Value,
    ) -> Result<serde_json::Value, error::ApiError> {
        let s = |k: &str| {
            obj.get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (api_version, kind) = (s("apiVersion"), s("kind"));
        let mut store = self.shared.lock();
        let ri = store
            .registry
            .for_kind(&api_version, &kind)
            .ok_or_else(|| {
                error::ApiError::bad_request(format!(
                    "no resource serves kind {kind:?} in {api_version:?}"
                ))
            })?;
        let sri = convert::storage_of(&store.registry, &ri);
        let ns = match meta::meta_str(&obj, "namespace") {
            _ if !ri.namespaced => String::new(),
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        let obj = convert::to_storage(&ri, obj);
        let created = store.create(&sri, &ns, obj, lifecycle::Manager::Update("testkit"))?;
        Ok(convert::from_storage(&ri, &created.value))
    }

    /// Injects faults into later requests (replacing earlier ones).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.control().faults = faults;
    }

    /// Stops injecting faults.
    pub fn clear_faults(&self) {
        self.shared.control().faults = Faults::default();
    }

    /// Requests served so far, per verb and resource.
    pub fn counters(&self) -> Counters {
        self.shared.control().counters.clone()
    }

    /// Resets the request counters.
    pub fn reset_counters(&self) {
        self.shared.control().counters = Counters::default();
    }

    /// Ends every open watch stream; clients see the stream close and re-watch.
    pub fn cut_watches(&self) {
        self.shared.cut.send_modify(|n| *n += 1);
    }

    /// Compacts the history and cuts every watch: each watcher's re-watch from its last
    /// resourceVersion gets 410 Gone and must relist (what etcd compaction does to a watcher
    /// that was disconnected at the wrong moment).
    pub fn expire_watches(&self) {
        self.compact_history();
        self.cut_watches();
    }

    /// Stops accepting requests, ends watches and waits for open connections (at most ~5 s).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
