//! What the reconcilers share: the client, the event recorder, the caches, the clock, the
//! operator's options and per-object retry state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use std::sync::Arc;

use super::waiting::TokenKey;
use crate::api::{Connection, ConnectionStatus};
use crate::hierarchy::Tree;
use crate::providers::{Env, Services};

/// The longest a failure holds provider calls back, whatever a provider asked for.
pub const MAX_HOLD: Duration = crate::providers::MAX_RETRY_AFTER;

/// How the operator was started.
#[derive(Clone, Debug)]
pub struct Options {
    /// The root project's namespace.
    pub root_namespace: String,
    /// Whether `defaultChain` AWS credentials are allowed.
    pub allow_default_credential_chain: bool,
    /// A label selector over Namespaces: when set, only Connections and VcsAuthTokens in
    /// namespaces it selects are served, and only those namespaces form the tree. Several
    /// operators with disjoint selectors can share a cluster (shards, or tests sharing one API
    /// server); each selector must select whole project trees, root included.
    pub namespace_selector: Option<String>,
    /// How long a superseded credential stays valid before it is revoked, so that builds
    /// that read it just before a renewal finish. Zero revokes at once.
    pub superseded_grace: Duration,
    /// Which servers Connections may name (`--allowed-endpoints`); default: any.
    pub allowed_endpoints: crate::providers::EndpointPolicy,
    /// Whether to count reconciles per object ([`Context::reconcile_count`]), for tests. Off in
    /// `patchbay run`: nothing there reads the counts, and they would keep an entry for every
    /// object ever reconciled.
    pub count_reconciles: bool,
}

/// The state both reconcilers share.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes Events on the reconciled objects.
    pub recorder: Recorder,
    /// How the operator was started.
    pub options: Options,
    /// Namespaces (metadata only): their labels form the tree.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Counts namespace events, so the tree is rebuilt only after a namespace changed.
    pub namespace_changes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The tree as last built, with the namespace event count it was built at.
    pub tree_cache: Mutex<Option<(u64, std::sync::Arc<Tree>)>>,
    /// Every Connection in the cluster.
    pub connections: Store<Connection>,
    /// Failure counts per object, for exponential backoff on errors.
    pub failures: Mutex<HashMap<String, u32>>,
    /// Per object, the earliest time a provider may be called again after a failure, so that
    /// events in between (our own status writes, Secret changes) do not bypass the backoff.
    pub not_before: Mutex<HashMap<String, std::time::Instant>>,
    /// Reconcile counts per object (`Kind ns/name`), when [`Options::count_reconciles`].
    pub reconciles: Mutex<HashMap<String, u64>>,
    /// The providers' long-lived clients and caches (GitHub's JWTs and installation ids).
    pub services: Services,
    /// Provider calls in flight, per connection (see [`Context::provider_slot`]).
    pub calls: Mutex<HashMap<String, usize>>,
    /// Re-mint budgets, per connection (see [`Context::spend`]).
    pub budgets: Mutex<HashMap<String, Budget>>,
    /// Metrics and health, served by [`crate::telemetry::http`].
    pub telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    /// Per token (`token_key`), the CA bundle of the connection it last minted from, so that
    /// revoking its credentials trusts the same CAs.
    pub bundles: Mutex<HashMap<String, crate::providers::CaBundle>>,
    /// Per shared grant ([`crate::providers::SharedGrant::lock`]), the lock a mint holds while
    /// it uses the grant, and the write-back it could not store yet (see [`Context::grant`]).
    pub grants: Mutex<HashMap<String, Arc<tokio::sync::Mutex<PendingWrites>>>>,
    /// Per token, a refusal only new input can lift (a grant that is gone) and the hashes of
    /// the request and inputs it was met with: until they change, the provider is not asked.
    pub dead_ends: Mutex<HashMap<String, (String, crate::providers::ProviderError)>>,
    /// The data of the Secrets connections read, kept while the Secret watch says it is
    /// current.
    pub secret_cache: Arc<super::secret_cache::SecretCache>,
    /// Per Connection (namespace, name and uid), the status this leader last wrote on it, until
    /// the cache holds it (see [`Context::last_connection_status`]).
    pub connection_writes: Mutex<HashMap<String, ConnectionStatus>>,
    /// Which Secrets exist, as the Secret watch reports them.
    pub secret_names: Arc<super::secret_names::SecretNames>,
    /// The operator's own output Secret writes whose watch events are still to come.
    pub own_writes: super::own_writes::OwnWrites,
    /// The tokens waiting for a call of their connection.
    pub waiting: super::waiting::Waiting,
}

/// The most Connection status writes remembered at once; past it they are forgotten (a
/// reconcile then decides from the cache, which may run a live check twice, nothing else).
const MAX_CONNECTION_WRITES: usize = 4_096;

/// The key a Connection's written status is remembered under: a Connection deleted and made
/// again under its name is another one.
fn connection_write_key(conn: &Connection) -> String {
    let meta = &conn.metadata;
    format!(
        "{}/{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
        meta.uid.as_deref().unwrap_or_default()
    )
}

/// Values a provider returned that must reach a Secret before the grant is used again (a
/// rotated refresh token whose write-back failed): the only copy, kept in memory.
pub type PendingWrites = Vec<crate::providers::SecretWrite>;

/// How many re-mints a connection may make at once, beyond scheduled renewals.
pub const REMINT_BURST: f64 = 60.0;
/// How many re-mints a connection regains per second.
pub const REMINTS_PER_SECOND: f64 = 1.0;

/// A connection's re-mint budget: a token bucket.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    left: f64,
    at: std::time::Instant,
}

impl Budget {
    /// A full budget at `now`.
    pub fn full(now: std::time::Instant) -> Self {
        Self {
            left: REMINT_BURST,
            at: now,
        }
    }

    /// Takes one re-mint at `now`; when none is left, how long until the next one.
    pub fn take(&mut self, now: std::time::Instant) -> Option<Duration> {
        let regained = now.saturating_duration_since(self.at).as_secs_f64() * REMINTS_PER_SECOND;
        self.left = (self.left + regained).min(REMINT_BURST);
        self.at = now;
        if self.left >= 1.0 {
            self.left -= 1.0;
            return None;
        }
        let wait = (1.0 - self.left) / REMINTS_PER_SECOND;
        Some(Duration::from_secs_f64(wait.clamp(0.1, 60.0)))
    }
}

/// How many provider calls for one connection run at once. One tenant's slow or hanging server
/// can hold at most this many of the shared reconcile slots; further tokens of that connection
/// wait outside them and are looked at again shortly.
pub const CALLS_PER_CONNECTION: usize = 8;

/// A provider call's place in its connection's share; given back when dropped.
pub struct Slot<'a> {
    ctx: &'a Context,
    connection: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut calls = self.ctx.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut running = 0;
        if let Some(n) = calls.get_mut(&self.connection) {
            *n = n.saturating_sub(1);
            running = *n;
            if *n == 0 {
                calls.remove(&self.connection);
            }
        }
        drop(calls);
        let free = CALLS_PER_CONNECTION.saturating_sub(running);
        self.ctx.waiting.call_ended(&self.connection, free);
    }
}

/// The tree and the Connection cache at one moment, for providers to look at.
pub struct Snapshot {
    tree: Arc<Tree>,
    connections: Vec<Arc<Connection>>,
    allow_default_chain: bool,
    endpoints: crate::providers::EndpointPolicy,
}

impl Snapshot {
    /// What providers may see of the cluster.
    pub fn env(&self) -> Env<'_> {
        Env {
            tree: &self.tree,
            connections: &self.connections,
            allow_default_chain: self.allow_default_chain,
            endpoints: &self.endpoints,
            ca_bundle: None,
        }
    }
}

impl Context {
    /// Remembers the CA bundle of the connection the token `key` mints from (or forgets it).
    pub fn remember_bundle(&self, key: String, bundle: Option<&crate::providers::CaBundle>) {
        let mut bundles = self.bundles.lock().unwrap_or_else(|e| e.into_inner());
        match bundle {
            Some(b) => {
                bundles.insert(key, b.clone());
            }
            None => {
                bundles.remove(&key);
            }
        }
    }

    /// The CA bundle of the connection the token `key` last minted from, if it has one.
    pub fn bundle_of(&self, key: &str) -> Option<crate::providers::CaBundle> {
        let bundles = self.bundles.lock().unwrap_or_else(|e| e.into_inner());
        bundles.get(key).cloned()
    }

    /// Runs a provider `call` for a connection of `kind` within `deadline` (else a transient
    /// `ProviderTimeout` naming `what`), and records it in the metrics.
    pub async fn call<T>(
        &self,
        (kind, call): (crate::api::ConnectionKind, crate::telemetry::Call),
        deadline: Duration,
        what: &str,
        work: impl Future<Output = Result<T, crate::providers::ProviderError>>,
    ) -> Result<T, crate::providers::ProviderError> {
        let started = std::time::Instant::now();
        let result = super::error::within(deadline, what, work).await;
        let took = started.elapsed();
        (self.telemetry.metrics).call(kind.field_name(), call, result.is_ok(), took);
        result
    }

    /// Publishes the condition of `type_` in `conditions` as an Event on `object`: Normal when it
    /// holds, Warning otherwise. A failure to publish is logged, never an error.
    pub async fn publish_condition(
        &self,
        object: &k8s_openapi::api::core::v1::ObjectReference,
        conditions: &[crate::api::Condition],
        type_: &str,
        action: &str,
    ) {
        use kube::runtime::events::{Event, EventType};
        let Some(condition) = conditions.iter().find(|c| c.type_ == type_) else {
            return;
        };
        let event = Event {
            type_: if condition.is_true(type_) {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: condition.reason.clone(),
            note: Some(condition.message.clone()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, object).await {
            tracing::debug!(error = %e, "could not publish an event");
        }
    }

    /// The current time.
    pub fn now(&self) -> Time {
        Time(k8s_openapi::jiff::Timestamp::now())
    }

    /// The namespace tree as the namespace cache holds it now; built once per namespace change
    /// and shared by every reconcile until the next one.
    pub fn tree(&self) -> std::sync::Arc<Tree> {
        let version = self
            .namespace_changes
            .load(std::sync::atomic::Ordering::Acquire);
        let mut cache = self.tree_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built_at, tree)) = cache.as_ref()
            && *built_at == version
        {
            return tree.clone();
        }
        let mut tree = Tree::new(self.options.root_namespace.clone());
        for ns in self.namespaces.state() {
            if let Some(name) = &ns.metadata.name {
                tree.upsert(name.clone(), ns.metadata.labels.clone().unwrap_or_default());
            }
        }
        let tree = std::sync::Arc::new(tree);
        *cache = Some((version, tree.clone()));
        tree
    }

    /// The tree and the Connection cache as they are now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            tree: self.tree(),
            connections: self.connections.state(),
            allow_default_chain: self.options.allow_default_credential_chain,
            endpoints: self.options.allowed_endpoints.clone(),
        }
    }

    /// Whether this operator serves `namespace`: always without a namespace selector, else when
    /// the (selected) namespace cache holds it. A namespace that joins later wakes the objects in
    /// it through the namespace watch.
    pub fn serves(&self, namespace: &str) -> bool {
        self.options.namespace_selector.is_none()
            || self
                .namespaces
                .get(&kube::runtime::reflector::ObjectRef::new(namespace))
                .is_some()
    }

    /// Remembers that this leader wrote `status` on `conn`.
    pub fn wrote_connection_status(&self, conn: &Connection, status: &ConnectionStatus) {
        let mut writes = (self.connection_writes.lock()).unwrap_or_else(|e| e.into_inner());
        if writes.len() >= MAX_CONNECTION_WRITES {
            writes.clear();
        }
        writes.insert(connection_write_key(conn), status.clone());
    }

    /// The status this leader last wrote on `conn`, when the cached copy does not hold it yet.
    /// Only the leader writes a Connection's status, so that write is what the API server
    /// stores: a reconcile decides from it rather than read the Connection again.
    pub fn last_connection_status(&self, conn: &Connection) -> Option<ConnectionStatus> {
        let mut writes = (self.connection_writes.lock()).unwrap_or_else(|e| e.into_inner());
        let key = connection_write_key(conn);
        let written = writes.get(&key)?;
        if conn.status.as_ref() == Some(written) {
            // The cache has caught up.
            writes.remove(&key);
            return None;
        }
        Some(written.clone())
    }

    /// Forgets the statuses written (a new leadership term: another leader may have written
    /// since).
    pub fn forget_connection_writes(&self) {
        (self.connection_writes.lock())
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Counts one reconcile of `key` (when [`Options::count_reconciles`]).
    pub fn count_reconcile(&self, key: &str) {
        if !self.options.count_reconciles {
            return;
        }
        let mut counts = self.reconciles.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(key.to_string()).or_default() += 1;
    }

    /// How many times `key` was reconciled (0 unless [`Options::count_reconciles`]).
    pub fn reconcile_count(&self, key: &str) -> u64 {
        let counts = self.reconciles.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(key).copied().unwrap_or_default()
    }

    /// Records a failure of `key` and returns how long to wait before the next attempt:
    /// exponential from 5 s to 5 min, with jitter; a `conflict` soon (see [`failure_delay`]).
    pub fn backoff(&self, key: &str, conflict: bool) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_default();
        *n = n.saturating_add(1);
        failure_delay(*n, conflict, jitter_seed(key, *n))
    }

    /// Holds provider calls for `key` back until `delay` (at most [`MAX_HOLD`]) has passed.
    pub fn hold(&self, key: &str, delay: Duration) {
        let now = std::time::Instant::now();
        let until = now.checked_add(delay.min(MAX_HOLD)).unwrap_or(now);
        let mut held = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(key.to_string(), until);
    }

    /// How long provider calls for `key` are still held back, if they are.
    pub fn held_for(&self, key: &str) -> Option<Duration> {
        let held = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        let until = *held.get(key)?;
        until
            .checked_duration_since(std::time::Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// A place for one provider call of `connection`, unless [`CALLS_PER_CONNECTION`] are
    /// already running; then token `waiter` waits for one of them to end (see
    /// [`super::waiting`]). Waiting is decided under the same lock that a call's end takes, so
    /// no wake-up falls between.
    pub fn provider_slot(&self, connection: &str, waiter: TokenKey) -> Option<Slot<'_>> {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(connection.to_string()).or_default();
        if *n >= CALLS_PER_CONNECTION {
            self.waiting.wait(connection, waiter);
            return None;
        }
        *n += 1;
        self.waiting.leave(&waiter);
        Some(Slot {
            ctx: self,
            connection: connection.to_string(),
        })
    }

    /// Spends one re-mint of `connection`'s budget ([`REMINT_BURST`] at once, then
    /// [`REMINTS_PER_SECOND`]); when it is spent, how long until the next one.
    pub fn spend(&self, connection: &str) -> Option<Duration> {
        let now = std::time::Instant::now();
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        (budgets.entry(connection.to_string()))
            .or_insert_with(|| Budget::full(now))
            .take(now)
    }

    /// The lock of shared grant `lock`, unless another mint holds it: one mint at a time uses
    /// a grant, within this process (leader election keeps other replicas from minting at
    /// all). The guard holds what is still to be written back from the last use.
    pub fn try_grant(&self, lock: &str) -> Option<tokio::sync::OwnedMutexGuard<PendingWrites>> {
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        // Locks nobody holds are dropped, unless they keep a pending write.
        grants.retain(|k, m| {
            k == lock || Arc::strong_count(m) > 1 || m.try_lock().map_or(true, |p| !p.is_empty())
        });
        grants
            .entry(lock.to_string())
            .or_default()
            .clone()
            .try_lock_owned()
            .ok()
    }

    /// Remembers that minting for `key` met `error` with inputs `hashes`.
    pub fn remember_dead_end(
        &self,
        key: &str,
        hashes: String,
        error: &crate::providers::ProviderError,
    ) {
        let mut ends = self.dead_ends.lock().unwrap_or_else(|e| e.into_inner());
        ends.insert(key.to_string(), (hashes, error.clone()));
    }

    /// The refusal minting for `key` met with these very `hashes`, if it did.
    pub fn dead_end(&self, key: &str, hashes: &str) -> Option<crate::providers::ProviderError> {
        let ends = self.dead_ends.lock().unwrap_or_else(|e| e.into_inner());
        (ends.get(key))
            .filter(|(h, _)| h == hashes)
            .map(|(_, e)| e.clone())
    }

    /// Forgets the failures of `key` after a success.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
        let mut held = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(key);
        let mut ends = self.dead_ends.lock().unwrap_or_else(|e| e.into_inner());
        ends.remove(key);
    }
}

/// The wait after a 409 Conflict, per consecutive failure so far (plus up to a second of
/// jitter): the object changed under the reconcile, and reading it again is all a retry needs.
pub const CONFLICT_RETRY: Duration = Duration::from_secs(1);
/// The longest wait after a 409 Conflict: an object that always conflicts is retried twice a
/// minute, not in a loop, and a storm of conflicts does not push objects into minutes of backoff.
pub const MAX_CONFLICT_RETRY: Duration = Duration::from_secs(30);

/// The delay after `failures` consecutive failures, the last one a 409 Conflict or not: a
/// conflict waits [`CONFLICT_RETRY`] per failure up to [`MAX_CONFLICT_RETRY`], anything else
/// [`backoff_delay`].
pub fn failure_delay(failures: u32, conflict: bool, seed: u64) -> Duration {
    if conflict {
        let wait = (CONFLICT_RETRY * failures.max(1)).min(MAX_CONFLICT_RETRY);
        return wait + Duration::from_millis(seed % 1_001);
    }
    backoff_delay(failures, seed)
}

/// The delay after `failures` consecutive failures: 5 s doubling up to 5 min, plus up to 10 %
/// jitter derived from `seed`.
pub fn backoff_delay(failures: u32, seed: u64) -> Duration {
    let base = 5u64
        .saturating_mul(1u64 << failures.saturating_sub(1).min(16))
        .min(300);
    let jitter_ms = seed % (base * 100 + 1);
    Duration::from_millis(base * 1000 + jitter_ms)
}

fn jitter_seed(key: &str, n: u32) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one((key, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_and_caps_at_five_minutes() {
        let secs = |n| backoff_delay(n, 0).as_secs();
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [5, 10, 20, 40]);
        assert_eq!(secs(7), 300);
        assert_eq!(secs(40), 300);
    }

    #[test]
    fn a_conflict_is_retried_a_second_later_per_failure_and_never_after_more_than_half_a_minute() {
        let secs = |n| failure_delay(n, true, 0).as_secs();
        assert_eq!([secs(1), secs(2), secs(3), secs(10)], [1, 2, 3, 10]);
        assert_eq!(secs(31), 30);
        assert_eq!(secs(u32::MAX), 30);
        let jittered = failure_delay(1, true, 12_345);
        assert!(
            (CONFLICT_RETRY..=2 * CONFLICT_RETRY).contains(&jittered),
            "{jittered:?}"
        );
        assert_eq!(failure_delay(1, false, 0), backoff_delay(1, 0));
    }

    #[test]
    fn a_connection_remints_a_burst_then_one_per_second() {
        let start = std::time::Instant::now();
        let mut budget = Budget::full(start);
        for _ in 0..60 {
            assert_eq!(budget.take(start), None);
        }
        let wait = budget.take(start).expect("the burst is spent");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        let later = start + Duration::from_secs(1);
        assert_eq!(budget.take(later), None, "one regained after a second");
        assert!(budget.take(later).is_some());
    }

    #[test]
    fn jitter_adds_at_most_a_tenth() {
        for seed in [0, 1, 7, u64::MAX] {
            let d = backoff_delay(3, seed);
            assert!(
                d >= Duration::from_secs(20) && d <= Duration::from_secs(22),
                "{d:?}"
            );
        }
    }
}
