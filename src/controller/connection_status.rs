//! What a Connection's status should say, decided from what the controller read: its spec,
//! the Secrets it references, the namespace tree and the other Connections. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{ConditionStatus, ConnectionSpec, ConnectionStatus};
use crate::conditions::{self, Desired, types};
use crate::hierarchy::Tree;
use crate::providers::{self, ConfigError, SecretValues};

/// Everything the decision needs about one Connection and its surroundings.
pub struct Facts<'a> {
    /// Namespace of the Connection.
    pub namespace: &'a str,
    /// Name of the Connection.
    pub name: &'a str,
    /// UID of the Connection (seeds the generated External ID).
    pub uid: &'a str,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The spec.
    pub spec: &'a ConnectionSpec,
    /// The status as last written.
    pub previous: Option<&'a ConnectionStatus>,
    /// The referenced Secrets' data, as read.
    pub secrets: &'a SecretValues,
    /// The namespace tree.
    pub tree: &'a Tree,
    /// Other Connections by (namespace, name), for iamRole sources.
    pub lookup: &'a dyn Fn(&str, &str) -> Option<&'a ConnectionSpec>,
    /// Whether `defaultChain` credentials are allowed (`--allow-default-credential-chain`).
    pub allow_default_chain: bool,
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
    let mut status = facts.previous.cloned().unwrap_or_default();
    status.observed_generation = facts.generation;
    status.connection_type = facts.spec.kind().map(|k| k.field_name().to_string());
    status.external_id = generated_external_id(facts);

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
                reason: "Valid",
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
    conditions::set(
        &mut status.conditions,
        desired.clone(),
        facts.generation,
        now,
    );
    let problem = result
        .as_ref()
        .err()
        .map(|e| (e.reason, e.message.as_str()));
    conditions::set_stalled(&mut status.conditions, problem, facts.generation, now);
    conditions::remove(&mut status.conditions, types::RECONCILING);
    if !status.conditions.iter().any(|c| c.type_ == types::VERIFIED) {
        conditions::set(
            &mut status.conditions,
            Desired {
                type_: types::VERIFIED,
                status: ConditionStatus::Unknown,
                reason: "NotChecked",
                message: "no live check has run against the provider".into(),
            },
            facts.generation,
            now,
        );
    }
    Decision {
        status,
        transition,
        ready,
    }
}

/// The Ready summary, or the first problem found.
fn check(facts: &Facts<'_>) -> Result<String, ConfigError> {
    let validated = providers::validate(facts.spec, facts.secrets)?;
    if facts.spec.aws_credentials().is_some() {
        let aws = providers::check_aws_credentials(
            facts.tree,
            facts.namespace,
            facts.name,
            facts.spec,
            facts.allow_default_chain,
            facts.lookup,
        )?;
        if !aws.sources.is_empty() {
            return Ok(format!(
                "{}, assumed with {}",
                validated.summary,
                aws.sources.join(" → ")
            ));
        }
    }
    Ok(validated.summary)
}

/// The External ID to show: kept once generated, generated for an iamRole without one.
fn generated_external_id(facts: &Facts<'_>) -> Option<String> {
    let role = facts.spec.aws_credentials()?.iam_role.as_ref()?;
    if role.external_id.is_some() {
        return None;
    }
    Some(
        facts
            .previous
            .and_then(|s| s.external_id.clone())
            .unwrap_or_else(|| providers::external_id(facts.uid)),
    )
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
    let checked =
        verified.is_some_and(|c| c.reason != "NotChecked" && c.observed_generation == generation);
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
    outcome: Result<String, (&'static str, String)>,
    requested: Option<&str>,
    now: &Time,
) -> bool {
    status.verified_at = Some(now.clone());
    status.verify_requested_at = requested.map(str::to_string);
    let desired = match outcome {
        Ok(message) => Desired {
            type_: types::VERIFIED,
            status: ConditionStatus::True,
            reason: "Verified",
            message,
        },
        Err((reason, message)) => Desired {
            type_: types::VERIFIED,
            status: ConditionStatus::False,
            reason,
            message,
        },
    };
    conditions::set(&mut status.conditions, desired, generation, now)
}
