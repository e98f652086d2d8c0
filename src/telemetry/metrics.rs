//! The Prometheus metrics (`prometheus-client`), named as cert-manager names its own.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A histogram family with latency buckets from 5 ms to 82 s.
type Latency<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// A reconcile: which controller, and whether it succeeded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

/// One provider call: the connection kind, the call and its result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    kind: &'static str,
    call: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallKindLabels {
    kind: &'static str,
    call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// One VcsAuthToken.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    namespace: String,
    name: String,
}

/// The provider calls patchbay makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Minting a credential for a token.
    Mint,
    /// A Connection's live check.
    Verify,
    /// Revoking a superseded or withdrawn credential.
    Revoke,
    /// Creating a new key ("Rotate key").
    RotateKey,
    /// Deleting a rotated-out key.
    DeleteKey,
}

impl Call {
    fn label(self) -> &'static str {
        match self {
            Call::Mint => "mint",
            Call::Verify => "verify",
            Call::Revoke => "revoke",
            Call::RotateKey => "rotate_key",
            Call::DeleteKey => "delete_key",
        }
    }
}

/// The operator's metrics, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_seconds: Latency<ControllerLabels>,
    calls: Family<CallLabels, Counter>,
    call_seconds: Latency<CallKindLabels>,
    renewal_failures: Family<KindLabels, Counter>,
    expiry: Family<TokenLabels, Gauge>,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("patchbay");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by controller (connection, vcsauthtoken) and result (success, error)",
            reconciles.clone(),
        );
        let reconcile_seconds =
            Latency::<ControllerLabels>::new_with_constructor(latency_histogram);
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles take, by controller",
            reconcile_seconds.clone(),
        );
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "provider_calls",
            "Provider calls by connection kind, call (mint, verify, revoke, rotate_key, \
             delete_key) and result (success, error)",
            calls.clone(),
        );
        let call_seconds = Latency::<CallKindLabels>::new_with_constructor(latency_histogram);
        registry.register(
            "provider_call_duration_seconds",
            "How long provider calls take, by connection kind and call",
            call_seconds.clone(),
        );
        let renewal_failures = Family::<KindLabels, Counter>::default();
        // Every kind starts at 0, so that `rate()` and alerts see the series before a failure.
        for kind in crate::api::ConnectionKind::ALL {
            let _ = renewal_failures.get_or_create(&KindLabels {
                kind: kind.field_name(),
            });
        }
        registry.register(
            "renewal_failures",
            "Failed mints for tokens that already held a credential, by connection kind",
            renewal_failures.clone(),
        );
        let expiry = Family::<TokenLabels, Gauge>::default();
        registry.register(
            "token_expiration_timestamp_seconds",
            "When the credential in each VcsAuthToken's Secret expires (Unix seconds)",
            expiry.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process is the leader that mints, 0 while it is a standby",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_seconds,
            calls,
            call_seconds,
            renewal_failures,
            expiry,
            leader,
        }
    }
}

fn result(ok: bool) -> &'static str {
    if ok { "success" } else { "error" }
}

impl Metrics {
    /// Records one reconcile of `controller` that took `took`.
    pub fn reconcile(&self, controller: &'static str, ok: bool, took: Duration) {
        let labels = ReconcileLabels {
            controller,
            result: result(ok),
        };
        self.reconciles.get_or_create(&labels).inc();
        let labels = ControllerLabels { controller };
        (self.reconcile_seconds.get_or_create(&labels)).observe(took.as_secs_f64());
    }

    /// Records one provider call for a connection of `kind` (its block name, e.g. `githubApp`).
    pub fn call(&self, kind: &'static str, call: Call, ok: bool, took: Duration) {
        let call = call.label();
        let labels = CallLabels {
            kind,
            call,
            result: result(ok),
        };
        self.calls.get_or_create(&labels).inc();
        let labels = CallKindLabels { kind, call };
        (self.call_seconds.get_or_create(&labels)).observe(took.as_secs_f64());
    }

    /// Records a failed mint for a token that already held a credential.
    pub fn renewal_failed(&self, kind: &'static str) {
        self.renewal_failures
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// Sets (or, with `None`, removes) the expiry of the credential of token `namespace/name`.
    pub fn token_expiry(&self, namespace: &str, name: &str, expires: Option<i64>) {
        let labels = TokenLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        match expires {
            Some(at) => {
                self.expiry.get_or_create(&labels).set(at);
            }
            None => {
                self.expiry.remove(&labels);
            }
        }
    }

    /// Records whether this process leads.
    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_mint_shows_in_the_counter_and_the_latency_histogram() {
        let metrics = Metrics::default();
        metrics.call("githubApp", Call::Mint, true, Duration::from_millis(30));
        metrics.call("githubApp", Call::Mint, false, Duration::from_millis(30));
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"patchbay_provider_calls_total{kind="githubApp",call="mint",result="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"patchbay_provider_call_duration_seconds_count{kind="githubApp",call="mint"} 2"#
            ),
            "{text}"
        );
    }

    #[test]
    fn a_deleted_token_leaves_no_expiry_series_behind() {
        let metrics = Metrics::default();
        metrics.token_expiry("team-a", "build", Some(1_800_000_000));
        let series = r#"patchbay_token_expiration_timestamp_seconds{namespace="team-a",name="build"} 1800000000"#;
        assert!(metrics.encode().contains(series));
        metrics.token_expiry("team-a", "build", None);
        assert!(!metrics.encode().contains("namespace=\"team-a\""));
    }
}
