//! What a Connection's status should say, decided from what the controller read: its spec,
//! the Secrets it references, the namespace tree and the other Connections. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use kube::Resource;

use crate::api::{ConditionStatus, Connection, ConnectionStatus};
use crate::conditions::{self, Desired, reasons, types};
use crate::providers::{self, Env, ProviderError, SecretValues, Verification};

/// What the decision is made from.
pub struct Facts<'a> {
    /// The Connection, with its status as last written.
    pub conn: &'a Connection,
    /// The Secrets it references, as read.
    pub secrets: &'a SecretValues,
    /// The tree and the other Connections.
    pub env: &'a Env<'a>,
}

/// The decided status and whether `Ready` changed status (worth an Event).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The status to write.
    pub status: ConnectionStatus,
    /// `Some((reason, message))` when Ready changed status or reason.
    pub transition: Option<(String, String)>,
    /// Whether the connection is Ready.
    pub ready: bool,
}

/// Checks the connection and builds its status.
pub fn decide(facts: &Facts<'_>, now: &Time) -> Decision {
    let conn = facts.conn;
    let generation = conn.meta().generation;
    let mut status = conn.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    status.connection_type = conn.spec.kind().map(|k| k.field_name().to_string());
    status.external_id = (providers::for_spec(&conn.spec).ok()).and_then(|p| p.external_id(conn));

    let result = check(facts);
    let previous_ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == types::READY)
        .map(|c| (c.status, c.reason.clone()));
    let (ready, desired) = match &result {
        Ok(summary) => (
            true,
            Desired {
                type_: types::READY,
                status: ConditionStatus::True,
                reason: reasons::VALID,
                message: summary.clone(),
            },
        ),
        Err(e) => (
            false,
            Desired {
                type_: types::READY,
                status: ConditionStatus::False,
                reason: e.reason,
                message: e.message.clone(),
            },
        ),
    };
    let transition = (previous_ready.as_ref().map(|(s, r)| (*s, r.as_str()))
        != Some((desired.status, desired.reason)))
    .then(|| (desired.reason.to_string(), desired.message.clone()));
    conditions::set(&mut status.conditions, desired.clone(), generation, now);
    let problem = result
        .as_ref()
        .err()
        .map(|e| (e.reason, e.message.as_str()));
    conditions::set_stalled(&mut status.conditions, problem, generation, now);
    conditions::remove(&mut status.conditions, types::RECONCILING);
    if !status.conditions.iter().any(|c| c.type_ == types::VERIFIED) {
        conditions::set(
            &mut status.conditions,
            Desired {
                type_: types::VERIFIED,
                status: ConditionStatus::Unknown,
                reason: reasons::NOT_CHECKED,
                message: "no live check has run against the provider".into(),
            },
            generation,
            now,
        );
    }
    Decision {
        status,
        transition,
        ready,
    }
}

/// The kind's checks, then what the connection reaches through the tree.
fn check(facts: &Facts<'_>) -> Result<String, ProviderError> {
    let conn = facts.conn;
    let validated = providers::validate(&conn.spec, facts.secrets)?;
    facts.env.endpoints.check(&conn.spec)?;
    let provider = providers::for_spec(&conn.spec)?;
    Ok(provider.check_links(conn, facts.env, validated)?.summary)
}

#[cfg(test)]
mod tests;

/// The annotation that asks for a new live check of a Connection.
pub const VERIFY_REQUESTED_AT: &str = "patchbay.dev/verify-requested-at";

/// How often a Ready connection is checked live again without any change.
pub const VERIFY_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether the live check should run now: never checked (or not for this generation), asked
/// for by annotation, or last run longer ago than [`VERIFY_EVERY`].
pub fn needs_verify(
    status: &ConnectionStatus,
    generation: Option<i64>,
    requested: Option<&str>,
    now: &Time,
) -> bool {
    let verified = status
        .conditions
        .iter()
        .find(|c| c.type_ == types::VERIFIED);
    let checked = verified
        .is_some_and(|c| c.reason != reasons::NOT_CHECKED && c.observed_generation == generation);
    let asked = requested.is_some_and(|r| status.verify_requested_at.as_deref() != Some(r));
    let stale = status.verified_at.as_ref().is_none_or(|at| {
        now.0.duration_since(at.0)
            >= k8s_openapi::jiff::SignedDuration::try_from(VERIFY_EVERY).unwrap_or_default()
    });
    !checked || asked || stale
}

/// Records the outcome of a live check in the status.
pub fn set_verified(
    status: &mut ConnectionStatus,
    generation: Option<i64>,
    outcome: Verification,
    requested: Option<&str>,
    now: &Time,
) -> bool {
    // A check that could not run is no verification: it stamps no time, so kinds without a
    // live check cost no periodic status write.
    if !matches!(outcome, Verification::Unknown { .. }) {
        status.verified_at = Some(now.clone());
    }
    status.verify_requested_at = requested.map(str::to_string);
    let (status_, reason, message) = match outcome {
        Verification::Verified(message) => (ConditionStatus::True, reasons::VERIFIED, message),
        Verification::Failed(e) => (ConditionStatus::False, e.reason, e.message),
        Verification::Unknown { reason, message } => (ConditionStatus::Unknown, reason, message),
    };
    let desired = Desired {
        type_: types::VERIFIED,
        status: status_,
        reason,
        message,
    };
    conditions::set(&mut status.conditions, desired, generation, now)
}
