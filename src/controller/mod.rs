//! The reconcilers and what they share: reading references, deciding status, writing it.
//!
//! ```text
//!  Namespaces (metadata) ─┐ reflector → tree ──┬─▶ Connection controller ◀──┬── Secrets (metadata)
//!  Connections ───────────┘ reflector → store ─┴─▶ VcsAuthToken controller ◀─┘
//! ```
//!
//! The namespace and connection caches are fed by one watch each; every event updates the cache
//! first and is then handed to the controllers as a trigger, so a reconcile never sees a cache
//! older than the event that woke it. The connection cache is also the Connection controller's
//! own store. An update that changes nothing the controllers act on (a namespace's annotations,
//! a Connection's periodic check time) updates the cache but wakes nothing. The tokens have a
//! watch and cache of their own; caches hold no managed fields.

pub mod connection;
pub mod connection_status;
mod context;
mod error;
mod output_secret;
mod own_writes;
mod pipeline;
mod report;
mod revocation;
pub mod rotation;
mod secret_cache;
mod secret_names;
mod secrets;
mod status;
mod streaming;
pub mod token;
pub mod token_status;
mod waiting;
mod withdrawal;

pub use context::{Context, Options, Snapshot, backoff_delay};
pub use error::Error;
pub use status::FIELD_MANAGER;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::{PartialObjectMeta, PartialObjectMetaExt};
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::api::{Connection, VcsAuthToken};

/// How many Connections are reconciled at once.
const CONNECTION_CONCURRENCY: u16 = 8;
/// How many VcsAuthTokens are reconciled at once: enough to keep providers busy, few enough that
/// a restart with thousands of tokens does not hold thousands of reconciles in memory.
const TOKEN_CONCURRENCY: u16 = 32;

/// Where a cache's events go after the cache has seen them: the trigger streams of the
/// controllers of the current leadership term. A standby has none, so its caches stay warm
/// without anything queueing up.
struct Triggers<K> {
    senders: Arc<Mutex<Vec<mpsc::Sender<K>>>>,
}

impl<K> Clone for Triggers<K> {
    fn clone(&self) -> Self {
        Self {
            senders: self.senders.clone(),
        }
    }
}

impl<K: Send + 'static> Triggers<K> {
    /// A new trigger stream, fed from now on until it is dropped.
    fn subscribe(&self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let (tx, rx) = mpsc::channel(1024);
        lock(&self.senders).push(tx);
        futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|o| (Ok(o), rx)) })
    }

    /// A new trigger stream that first yields every object `store` holds now, then what
    /// [`Self::subscribe`] yields. Subscribing before reading the store loses no event in
    /// between; an object yielded twice is reconciled once.
    fn subscribe_with(
        &self,
        store: &Store<K>,
    ) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
    where
        K: Resource + Clone,
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        let later = self.subscribe();
        let now: Vec<_> = store
            .state()
            .iter()
            .map(|o| Ok(o.as_ref().clone()))
            .collect();
        futures::stream::iter(now).chain(later)
    }

    fn current(&self) -> Vec<mpsc::Sender<K>> {
        let mut senders = lock(&self.senders);
        senders.retain(|tx| !tx.is_closed());
        senders.clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A cache fed by one watch, whose events are then passed on to the subscribed triggers. An
/// update for which `matters(cached, new)` is false still updates the cache but wakes nothing:
/// it changes nothing the controllers act on.
fn shared_cache<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    changes: Arc<std::sync::atomic::AtomicU64>,
    matters: impl Fn(&K, &K) -> bool + Send + 'static,
) -> (Store<K>, Triggers<K>, tokio::task::JoinHandle<()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let triggers = Triggers {
        senders: Arc::default(),
    };
    let quiet = Quiet::default();
    let judged = stream
        .modify(lean)
        .inspect_ok(quiet.judge(store.clone(), matters));
    let events = reflector::reflector(writer, judged)
        .default_backoff()
        .touched_objects()
        .try_filter(move |object| futures::future::ready(quiet.passes(object)))
        .inspect_ok(move |_| {
            changes.fetch_add(1, std::sync::atomic::Ordering::Release);
        });
    let feeder = tokio::spawn(feed(events, triggers.clone()));
    (store, triggers, feeder)
}

/// One version of a cached object: its reference and resourceVersion.
type Version<K> = (reflector::ObjectRef<K>, Option<String>);

/// The updates a cache takes but passes on to no controller. Each is judged before the cache
/// takes it (the cache still holds the old object then) and held back after it did: the same
/// object passes both stages, in order.
struct Quiet<K: Resource<DynamicType = ()>> {
    marks: Arc<Mutex<HashSet<Version<K>>>>,
}

impl<K: Resource<DynamicType = ()>> Default for Quiet<K> {
    fn default() -> Self {
        Self {
            marks: Arc::default(),
        }
    }
}

impl<K> Quiet<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    /// Marks an update for which `matters(cached, new)` is false, before `cache` takes it.
    fn judge(
        &self,
        cache: Store<K>,
        matters: impl Fn(&K, &K) -> bool + Send + 'static,
    ) -> impl FnMut(&watcher::Event<K>) + Send + 'static {
        let marks = self.marks.clone();
        move |event| {
            if let watcher::Event::Apply(new) = event {
                let key = reflector::ObjectRef::from_obj(new);
                if cache.get(&key).is_some_and(|old| !matters(&old, new)) {
                    lock(&marks).insert((key, new.meta().resource_version.clone()));
                }
            }
        }
    }

    /// Whether `object`, once cached, goes on to the controllers (it was not marked).
    fn passes(&self, object: &K) -> bool {
        let key = (
            reflector::ObjectRef::from_obj(object),
            object.meta().resource_version.clone(),
        );
        !lock(&self.marks).remove(&key)
    }
}

/// Whether a token update can change anything a reconcile does: anything but its status, which
/// only the operator writes (tenants cannot: the chart's roles leave `vcsauthtokens/status`
/// out). Without this, every status the operator wrote woke the token once more.
fn token_changed(old: &VcsAuthToken, new: &VcsAuthToken) -> bool {
    let meta = |t: &VcsAuthToken| kube::api::ObjectMeta {
        resource_version: None,
        ..t.metadata.clone()
    };
    old.spec != new.spec || meta(old) != meta(new)
}

/// Whether a Connection update can change anything a reconcile does: anything but the time of
/// the periodic live check (`status.verifiedAt`, stamped every few minutes; a check whose
/// outcome changed also changes its condition). Without this, every periodic check of a
/// connection reconciled every token that uses it.
fn connection_changed(old: &Connection, new: &Connection) -> bool {
    let essence = |c: &Connection| {
        let mut c = c.clone();
        c.metadata.resource_version = None;
        if let Some(status) = c.status.as_mut() {
            status.verified_at = None;
        }
        serde_json::to_value(c).ok()
    };
    essence(old) != essence(new)
}

/// Whether a namespace update can change what resolves where: only its labels can. Its
/// annotations, status or finalizers changing rebuilds no tree and wakes no token.
fn labels_changed(old: &NamespaceMeta, new: &NamespaceMeta) -> bool {
    old.metadata.labels != new.metadata.labels
}

/// A Namespace's metadata, as the namespace cache holds it.
type NamespaceMeta = PartialObjectMeta<Namespace>;

/// Drops from a cached object what patchbay never reads and the API server repeats on every
/// object: its managed fields and kubectl's copy of the last applied manifest. Ten thousand
/// tokens carry several kilobytes of each.
fn lean<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// A controller of `K` fed by a watch of its own, whose cache is [`lean`]; an update for which
/// `matters(cached, new)` is false updates the cache but is not reconciled.
fn lean_controller<K>(
    client: &Client,
    matters: impl Fn(&K, &K) -> bool + Send + 'static,
) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let quiet = Quiet::default();
    let own = streaming::watch(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .modify(lean)
        .inspect_ok(quiet.judge(reader.clone(), matters))
        .reflect(writer)
        .applied_objects()
        .try_filter(move |object| futures::future::ready(quiet.passes(object)))
        .map_ok(name_only);
    Controller::for_stream(own, reader)
}

/// Drops the resourceVersion and uid of an object on its way from the cache to the
/// controller's queue. The queue knows an object by its namespace and name only, but a
/// reference made from the object carries both, and the scheduler keeps its references
/// (in its map and in its timer) until the token's next renewal: two strings more per
/// reference, for as long as the token lives. The reconcile reads the object from the cache,
/// which keeps them.
fn name_only<K: Resource>(mut object: K) -> K {
    let meta = object.meta_mut();
    (meta.resource_version, meta.uid) = (None, None);
    object
}

/// Whether this process may reconcile: always, or while it holds the leader Lease.
pub struct Leadership {
    rx: tokio::sync::watch::Receiver<bool>,
    /// `always`: the value never changes.
    fixed: bool,
}

impl Leadership {
    /// Always the leader (a single instance, and the tests' in-process operator).
    pub fn always() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(true);
        // The value never changes; the receiver keeps answering `true` after the sender is gone.
        drop(tx);
        Self { rx, fixed: true }
    }

    /// Leads while `elected` says so ([`crate::leader::elect`]).
    pub fn elected(elected: tokio::sync::watch::Receiver<bool>) -> Self {
        Self {
            rx: elected,
            fixed: false,
        }
    }

    /// Waits until this process leads; `false` when the election has ended first.
    async fn acquired(&mut self) -> bool {
        self.rx.wait_for(|leading| *leading).await.is_ok()
    }

    /// Resolves when this process stops leading.
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let (mut rx, fixed) = (self.rx.clone(), self.fixed);
        async move {
            // An election that ended (its task gone) is a loss; `always` never changes.
            if rx.wait_for(|leading| !*leading).await.is_err() && fixed {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Runs both controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (_, operator) = start(client, options, shutdown);
    operator.await;
}

/// Builds the shared context and returns it with the future that runs both controllers until
/// `shutdown` resolves (after the caches have synced). Tests keep the context to observe it.
pub fn start(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> (Arc<Context>, impl Future<Output = ()> + Send + 'static) {
    let telemetry = Arc::default();
    start_elected(client, options, Leadership::always(), telemetry, shutdown)
}

/// Like [`start`], but the controllers run only while `leadership` says this process leads
/// (the caches are filled from the start and kept warm in between), and they record their
/// work in `telemetry`.
pub fn start_elected(
    client: Client,
    options: Options,
    mut leadership: Leadership,
    telemetry: Arc<crate::telemetry::Telemetry>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> (Arc<Context>, impl Future<Output = ()> + Send + 'static) {
    let namespace_changes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let namespace_watch = match &options.namespace_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let (namespaces, ns_triggers, ns_feeder) = shared_cache(
        streaming::watch(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            namespace_watch,
        ),
        namespace_changes.clone(),
        labels_changed,
    );
    let (connections, conn_triggers, conn_feeder) = shared_cache(
        streaming::watch(
            Api::<Connection>::all(client.clone()),
            watcher::Config::default(),
        ),
        Arc::default(),
        connection_changed,
    );
    let reporter = Reporter {
        controller: "patchbay".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        options,
        namespaces,
        namespace_changes,
        tree_cache: Mutex::new(None),
        connections,
        failures: Mutex::new(HashMap::new()),
        not_before: Mutex::new(HashMap::new()),
        reconciles: Mutex::new(HashMap::new()),
        services: crate::providers::Services::default(),
        calls: Mutex::new(HashMap::new()),
        budgets: Mutex::new(HashMap::new()),
        telemetry,
        bundles: Mutex::new(HashMap::new()),
        grants: Mutex::new(HashMap::new()),
        dead_ends: Mutex::new(HashMap::new()),
        secret_cache: Arc::default(),
        secret_names: Arc::default(),
        connection_writes: Mutex::new(HashMap::new()),
        own_writes: own_writes::OwnWrites::default(),
        waiting: waiting::Waiting::default(),
    });
    let context = ctx.clone();
    let operator = async move {
        let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
        if synced(&context).await {
            loop {
                // Standing by: caches warm, nothing reconciled.
                tokio::select! {
                    () = shutdown.clone() => break,
                    acquired = leadership.acquired() => if !acquired { break },
                }
                context.telemetry.metrics.leading(true);
                let term_over = {
                    let shutdown = shutdown.clone();
                    let lost = leadership.lost();
                    async move {
                        tokio::select! {
                            () = shutdown => {},
                            () = lost => info!("no longer the leader; stopping the controllers"),
                        }
                    }
                };
                let triggers = (ns_triggers.subscribe(), ns_triggers.subscribe());
                // The Connection controller's own triggers start with every cached Connection,
                // as a controller's own watch starts with its list: each term looks at all.
                let conn = (
                    conn_triggers.subscribe_with(&context.connections),
                    conn_triggers.subscribe(),
                    conn_triggers.subscribe(),
                );
                run_controllers(client.clone(), context.clone(), triggers, conn, term_over).await;
                context.telemetry.metrics.leading(false);
                if futures::FutureExt::now_or_never(shutdown.clone()).is_some() {
                    break;
                }
            }
        }
        // The caches' watches end with the controllers.
        ns_feeder.abort();
        conn_feeder.abort();
    };
    (ctx, operator)
}

/// Waits until the namespace and connection caches have synced, and says so on `/readyz`.
async fn synced(ctx: &Context) -> bool {
    if ctx.namespaces.wait_until_ready().await.is_err()
        || ctx.connections.wait_until_ready().await.is_err()
    {
        warn!("the namespace or connection cache stopped before it synced");
        return false;
    }
    info!("caches synced");
    ctx.telemetry.caches_synced();
    true
}

/// How long after the shutdown signal the controllers may take to stop.
const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(25);

/// How long a shutdown waits for a controller's cache to finish its first list.
const STARTUP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// `shutdown`, held until `store` has synced (at most [`STARTUP_GRACE`]). A kube-runtime
/// Controller told to stop while its own cache is still listing never stops: its runner waits
/// for the cache, which stopped with the trigger queue. A SIGTERM during start-up therefore
/// waits for the first list instead (found on a real API server, where that list takes
/// longer than on the emulator).
async fn once_ready<K>(shutdown: impl Future<Output = ()>, store: Store<K>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    shutdown.await;
    if tokio::time::timeout(STARTUP_GRACE, store.wait_until_ready())
        .await
        .is_err()
    {
        warn!("stopping before the cache synced");
    }
}

async fn run_controllers<N, O, C>(
    client: Client,
    ctx: Arc<Context>,
    (ns_for_conns, ns_for_tokens): (N, N),
    (conn_own, conn_for_conns, conn_for_tokens): (O, C, C),
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    N: Stream<Item = Result<PartialObjectMeta<Namespace>, watcher::Error>> + Send + 'static,
    O: Stream<Item = Result<Connection, watcher::Error>> + Send + 'static,
    C: Stream<Item = Result<Connection, watcher::Error>> + Send + 'static,
{
    info!("starting controllers");
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    // Every Secret's metadata, one watch for both controllers: a changed Secret wakes the
    // Connections that reference it, and their tokens.
    let secrets = Triggers {
        senders: Arc::default(),
    };
    let (secrets_for_conns, secrets_for_tokens) = (secrets.subscribe(), secrets.subscribe());
    // What an earlier leadership term kept went unwatched since: read everything afresh.
    ctx.secret_cache.clear();
    ctx.secret_names.clear();
    ctx.own_writes.clear();
    ctx.forget_connection_writes();
    let (kept, names) = (ctx.secret_cache.clone(), ctx.secret_names.clone());
    let secret_feeder = tokio::spawn(feed(
        streaming::watch(
            Api::<SecretMeta>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .inspect_ok(move |event| keep_current(&kept, &names, event))
        .modify(secret_key_only)
        .touched_objects(),
        secrets,
    ));
    let connection_controller = connection_controller(
        ctx.clone(),
        conn_own,
        ns_for_conns,
        conn_for_conns,
        secrets_for_conns,
        shutdown.clone(),
    );
    let token_controller = token_controller(
        &client,
        ctx,
        ns_for_tokens,
        conn_for_tokens,
        secrets_for_tokens,
        shutdown.clone(),
    );
    let controllers = async {
        futures::join!(connection_controller, token_controller);
    };
    // A reconcile in flight may finish (provider calls are bounded), but never keep the
    // process past what Kubernetes grants a terminating pod by default (30 s).
    let deadline = async {
        shutdown.await;
        tokio::time::sleep(SHUTDOWN_DEADLINE).await;
    };
    tokio::select! {
        () = controllers => info!("controllers stopped"),
        () = deadline => warn!(
            deadline = ?SHUTDOWN_DEADLINE,
            "controllers did not stop in time after the shutdown signal; stopping anyway"
        ),
    }
    secret_feeder.abort();
}

/// A Secret's metadata, as the controllers watch it.
type SecretMeta = PartialObjectMeta<Secret>;

/// Keeps of a watched Secret only what the Secret watch's readers use: its namespace, name and
/// resourceVersion, and the label naming the token it was written for. The annotations
/// patchbay writes on every output Secret (hashes, times, the credential's fingerprint) and
/// everything else go as soon as the event is read, before it is copied to each controller and
/// waits in their queues: a restart lists ten thousand output Secrets at once.
fn secret_key_only(secret: &mut SecretMeta) {
    let meta = std::mem::take(&mut secret.metadata);
    let token = (meta.labels.into_iter().flatten()).find(|(k, _)| k == crate::output::TOKEN_LABEL);
    secret.metadata = kube::api::ObjectMeta {
        namespace: meta.namespace,
        name: meta.name,
        resource_version: meta.resource_version,
        labels: token.map(|label| BTreeMap::from([label])),
        ..Default::default()
    };
}

/// What renewal reads of a watched Secret: its version, its token label, the uid of the token
/// it belongs to (its controller's, else its owner-uid annotation), and the hashes and renewal
/// request its annotations record.
fn output_state(secret: &SecretMeta) -> secret_names::OutputState<'_> {
    use crate::output::annotations;
    let meta = &secret.metadata;
    let note = |key: &str| (meta.annotations.as_ref()?.get(key)).map(String::as_str);
    let controller = (meta.owner_references.iter().flatten()).find(|r| r.controller == Some(true));
    secret_names::OutputState {
        resource_version: meta.resource_version.as_deref().unwrap_or_default(),
        owner: controller.map_or_else(|| note(annotations::OWNER_UID), |r| Some(r.uid.as_str())),
        token: (meta.labels.as_ref())
            .and_then(|l| l.get(crate::output::TOKEN_LABEL).map(String::as_str)),
        request_hash: note(annotations::REQUEST_HASH),
        connection_hash: note(annotations::CONNECTION_HASH),
        renew_requested_at: note(annotations::RENEW_REQUESTED_AT),
    }
}

/// Drops the Secret data kept in memory that a watch event says is out of date, and keeps the
/// list of the Secrets that exist and what renewal reads of each (before the event is cut to
/// its key).
fn keep_current(
    kept: &secret_cache::SecretCache,
    names: &secret_names::SecretNames,
    event: &watcher::Event<SecretMeta>,
) {
    fn key(s: &SecretMeta) -> Option<(&str, &str)> {
        (s.metadata.namespace.as_deref()).zip(s.metadata.name.as_deref())
    }
    match event {
        watcher::Event::Apply(s) | watcher::Event::InitApply(s) => {
            if let Some((ns, name)) = key(s) {
                kept.observe(ns, name, s.metadata.resource_version.as_deref());
                names.seen(ns, name, &output_state(s));
            }
        }
        watcher::Event::Delete(s) => {
            if let Some((ns, name)) = key(s) {
                kept.observe(ns, name, None);
                names.deleted(ns, name);
            }
        }
        watcher::Event::Init => {
            kept.clear();
            names.listing();
        }
        watcher::Event::InitDone => names.listed(),
    }
}

/// Passes every object of `stream` on to the subscribed triggers.
async fn feed<K: Clone + Send + 'static>(
    stream: impl Stream<Item = Result<K, watcher::Error>> + Send,
    triggers: Triggers<K>,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(obj) => {
                for tx in triggers.current() {
                    let _ = tx.send(obj.clone()).await;
                }
            }
            Err(e) => warn!(error = %e, "watch failed; retrying"),
        }
    }
}

/// Runs one reconcile of `controller` and records it in the metrics.
async fn observed(
    ctx: Arc<Context>,
    controller: &'static str,
    reconcile: impl Future<Output = Result<kube::runtime::controller::Action, Error>>,
) -> Result<kube::runtime::controller::Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile.await;
    let took = started.elapsed();
    (ctx.telemetry.metrics).reconcile(controller, result.is_ok(), took);
    result
}

/// The Connection controller: woken by its Connections, the Secrets they reference, namespace
/// changes and changes to iamRole source connections.
fn connection_controller(
    ctx: Arc<Context>,
    own: impl Stream<Item = Result<Connection, watcher::Error>> + Send + 'static,
    namespaces: impl Stream<Item = Result<PartialObjectMeta<Namespace>, watcher::Error>>
    + Send
    + 'static,
    connections: impl Stream<Item = Result<Connection, watcher::Error>> + Send + 'static,
    secrets: impl Stream<Item = Result<SecretMeta, watcher::Error>> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    // The shared Connection cache is this controller's store; no second watch of Connections.
    let controller = Controller::for_stream(own, ctx.connections.clone());
    let stop = once_ready(shutdown, controller.store());
    controller
        .watches_stream(secrets, move |s| {
            connection::connections_for_secret(&c1, &s)
        })
        .watches_stream(namespaces, move |ns| {
            connection::connections_for_namespace(&c2, &ns)
        })
        .watches_stream(connections, move |c| {
            connection::connections_using_source(&c3, &kube::ResourceExt::name_any(&c))
        })
        .with_config(ControllerConfig::default().concurrency(CONNECTION_CONCURRENCY))
        .graceful_shutdown_on(stop)
        .run(
            |conn, ctx| {
                let key = status::connection_key(&conn);
                let work = error::contained(key, connection::reconcile(conn, ctx.clone()));
                observed(ctx, "connection", work)
            },
            connection::error_policy,
            ctx,
        )
        .for_each(|_| async {})
}

/// The VcsAuthToken controller: woken by its tokens, their connections, their connections'
/// Secrets, namespace changes and the Secrets patchbay wrote for them (both from the one watch
/// of every Secret's metadata).
fn token_controller(
    client: &Client,
    ctx: Arc<Context>,
    namespaces: impl Stream<Item = Result<PartialObjectMeta<Namespace>, watcher::Error>>
    + Send
    + 'static,
    connections: impl Stream<Item = Result<Connection, watcher::Error>> + Send + 'static,
    secrets: impl Stream<Item = Result<SecretMeta, watcher::Error>> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    let tokens = lean_controller::<VcsAuthToken>(client, token_changed);
    // Tokens woken because a call of their connection ended (see `waiting.rs`).
    let woken = ctx.waiting.subscribe().map(|(namespace, name)| {
        let meta = kube::api::ObjectMeta {
            namespace: Some(namespace),
            name: Some(name),
            ..Default::default()
        };
        Ok::<_, watcher::Error>(meta.into_request_partial::<VcsAuthToken>())
    });
    let (store_a, store_b, store_c) = (tokens.store(), tokens.store(), tokens.store());
    let stop = once_ready(shutdown, tokens.store());
    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    tokens
        .watches_stream(connections, move |c| {
            token::tokens_for_connection(&c1, &store_a, &c)
        })
        .watches_stream(namespaces, move |ns| {
            token::tokens_for_namespace(&c2, &store_b, &ns)
        })
        .watches_stream(woken, |token: PartialObjectMeta<VcsAuthToken>| {
            let (ns, name) = (token.metadata.namespace, token.metadata.name);
            name.map(|name| ObjectRef::new(&name).within(&ns.unwrap_or_default()))
        })
        // One watch of every Secret's metadata: a deleted or edited output Secret wakes its
        // token, a changed connection Secret the tokens of its connections.
        .watches_stream(secrets, move |secret| {
            let own = token::token_for_secret(&c3, &secret);
            own.into_iter()
                .chain(token::tokens_for_connection_secret(&c3, &store_c, &secret))
        })
        .with_config(ControllerConfig::default().concurrency(TOKEN_CONCURRENCY))
        .graceful_shutdown_on(stop)
        .run(
            |token, ctx| {
                let key = status::token_key(&token);
                let work = error::contained(key, token::reconcile(token, ctx.clone()));
                observed(ctx, "vcsauthtoken", work)
            },
            token::error_policy,
            ctx,
        )
        .for_each(|_| async {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn connection(verified_at: i64, message: &str) -> Connection {
        let mut conn: Connection = serde_json::from_value(serde_json::json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "acme", "namespace": "ci", "resourceVersion": "1"},
            "spec": {"githubApp": {"appId": "1", "privateKey": {"name": "k", "key": "p"},
                "ownerUrl": "https://github.com/acme"}},
            "status": {"conditions": [{"type": "Verified", "status": "True", "reason": "Verified",
                "message": message, "lastTransitionTime": "2026-12-02T10:00:00Z"}]},
        }))
        .unwrap();
        let status = conn.status.as_mut().unwrap();
        status.verified_at = Some(Time(Timestamp::from_second(verified_at).unwrap()));
        conn
    }

    fn token(rv: &str, message: &str) -> VcsAuthToken {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "build", "namespace": "team", "resourceVersion": rv,
                "generation": 1, "finalizers": ["patchbay.dev/revoke"]},
            "spec": {"connection": "acme", "github": {"repositories": ["app"]}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Minted",
                "message": message, "lastTransitionTime": "2026-12-02T10:00:00Z"}]},
        }))
        .unwrap()
    }

    #[test]
    fn the_secret_watch_remembers_an_output_secret_s_version_and_renewal_annotations() {
        use crate::output::annotations;
        let secret: SecretMeta = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "out", "namespace": "team", "resourceVersion": "7",
                "labels": {crate::output::TOKEN_LABEL: "build"},
                "ownerReferences": [{"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
                    "name": "build", "uid": "uid-1", "controller": true}],
                "annotations": {annotations::REQUEST_HASH: "r1", annotations::CONNECTION_HASH: "c1",
                    annotations::RENEW_REQUESTED_AT: "now", annotations::TOKEN_ID: "sha256:ab"}},
        }))
        .unwrap();
        let (kept, names) = (
            secret_cache::SecretCache::default(),
            secret_names::SecretNames::default(),
        );
        keep_current(&kept, &names, &watcher::Event::Init);
        keep_current(&kept, &names, &watcher::Event::InitApply(secret.clone()));
        keep_current(&kept, &names, &watcher::Event::InitDone);
        let expected = secret_names::OutputState {
            resource_version: "7",
            token: Some("build"),
            owner: Some("uid-1"),
            request_hash: Some("r1"),
            connection_hash: Some("c1"),
            renew_requested_at: Some("now"),
        };
        assert!(names.unchanged("team", "out", &expected));
        let renewal_asked_again = secret_names::OutputState {
            renew_requested_at: Some("later"),
            ..expected
        };
        assert!(!names.unchanged("team", "out", &renewal_asked_again));
        let another_owner = secret_names::OutputState {
            owner: Some("uid-2"),
            ..expected
        };
        assert!(!names.unchanged("team", "out", &another_owner));
        keep_current(&kept, &names, &watcher::Event::Delete(secret));
        assert!(!names.unchanged("team", "out", &expected));
        assert!(names.absent("team", "out"));
    }

    #[test]
    fn a_watched_secret_keeps_only_its_namespace_name_version_and_token_label() {
        let mut secret: SecretMeta = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "out", "namespace": "team", "resourceVersion": "7", "uid": "u",
                "labels": {crate::output::TOKEN_LABEL: "build", "app": "x"},
                "annotations": {"patchbay.dev/token-id": "sha256:ab"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "1"}]},
        }))
        .unwrap();
        secret_key_only(&mut secret);
        let kept = serde_json::to_value(&secret.metadata).unwrap();
        assert_eq!(
            kept,
            serde_json::json!({"name": "out", "namespace": "team", "resourceVersion": "7",
                "labels": {crate::output::TOKEN_LABEL: "build"}})
        );
        let mut unlabelled: SecretMeta = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "key", "namespace": "ci", "labels": {"app": "x"}},
        }))
        .unwrap();
        secret_key_only(&mut unlabelled);
        assert_eq!(unlabelled.metadata.labels, None);
    }

    #[test]
    fn a_token_goes_to_the_controller_queue_without_its_version_and_uid_but_with_its_name() {
        let mut cached = token("5", "minted");
        cached.metadata.uid = Some("uid-1".into());
        let queued = name_only(cached.clone());
        assert_eq!(
            (&queued.metadata.resource_version, &queued.metadata.uid),
            (&None, &None)
        );
        assert_eq!(queued.metadata.name, cached.metadata.name);
        assert_eq!(queued.metadata.namespace, cached.metadata.namespace);
        let reference = ObjectRef::from_obj(&queued);
        assert_eq!(
            (reference.extra.resource_version, reference.extra.uid),
            (None, None),
            "the reference the scheduler keeps carries neither"
        );
    }

    #[test]
    fn a_status_the_operator_wrote_wakes_no_token() {
        assert!(!token_changed(
            &token("1", "minted"),
            &token("2", "minted; renewing later")
        ));
    }

    #[test]
    fn a_new_spec_annotation_or_deletion_of_a_token_wakes_it() {
        let before = token("1", "minted");
        let mut respecced = token("2", "minted");
        respecced.spec.connection = "other".into();
        assert!(token_changed(&before, &respecced));
        let mut asked = token("2", "minted");
        asked.metadata.annotations = Some(
            [(
                "patchbay.dev/renew-requested-at".to_string(),
                "now".to_string(),
            )]
            .into(),
        );
        assert!(token_changed(&before, &asked));
        let mut deleted = token("2", "minted");
        deleted.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(1).unwrap()));
        assert!(token_changed(&before, &deleted));
    }

    #[test]
    fn a_periodic_check_that_only_restamps_its_time_changes_no_connection_for_its_tokens() {
        let mut later = connection(2_000, "the App can be used");
        later.metadata.resource_version = Some("2".into());
        assert!(!connection_changed(
            &connection(1_000, "the App can be used"),
            &later
        ));
    }

    #[test]
    fn a_check_with_a_new_outcome_or_a_new_spec_changes_the_connection() {
        let before = connection(1_000, "the App can be used");
        assert!(connection_changed(
            &before,
            &connection(2_000, "the App is suspended")
        ));
        let mut respecced = before.clone();
        respecced.metadata.generation = Some(2);
        assert!(connection_changed(&before, &respecced));
    }
}
