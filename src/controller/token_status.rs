//! What a VcsAuthToken's status should say about its connection: where the namespace tree
//! resolved it, and whether the request fits the connection's kind. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::token::ConnectionRef;
use crate::api::{ConditionStatus, Connection, VcsAuthTokenSpec, VcsAuthTokenStatus};
use crate::conditions::{self, Desired, reasons, types};
use crate::hierarchy::{HierarchyError, ResolveError};
use crate::providers::ProviderError;

/// The request block a token sets, as the name of its field.
pub fn request_block(spec: &VcsAuthTokenSpec) -> Option<&'static str> {
    [
        (spec.github.is_some(), "github"),
        (spec.aws.is_some(), "aws"),
        (spec.ecr.is_some(), "ecr"),
        (spec.oauth.is_some(), "oauth"),
        (spec.registry.is_some(), "registry"),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name))
}

/// Whether the token's request fits the connection it resolved to: the request block the
/// connection's kind takes (`None`: the kind's credential is projected without one).
pub fn request_fits(
    token: &VcsAuthTokenSpec,
    conn: &Connection,
    at: &ConnectionRef,
) -> Result<(), ProviderError> {
    let Some(kind) = conn.spec.kind() else {
        return Err(ProviderError::transient(
            reasons::CONNECTION_NOT_READY,
            format!(
                "Connection {}/{} has no single provider block",
                at.namespace, at.name
            ),
        ));
    };
    let wanted = kind.request_block();
    let given = request_block(token);
    let alternative = kind.alternative_request_block();
    if wanted != given && (alternative.is_none() || alternative != given) {
        let block =
            |b: Option<&str>| b.map_or("no request block".to_string(), |b| format!("spec.{b}"));
        let mut expected = block(wanted);
        if alternative.is_some() {
            expected = format!("{expected} or {}", block(alternative));
        }
        let found = block(given);
        return Err(ProviderError::config(
            reasons::CONNECTION_KIND_MISMATCH,
            format!(
                "Connection {}/{} is a {kind} connection, which takes {expected}; this token has {found}",
                at.namespace, at.name
            ),
        ));
    }
    Ok(())
}

/// Sets `Ready` False (and kstatus `Stalled` when only the user can fix it) for a token whose
/// connection cannot be used.
pub fn set_outcome(
    status: &mut VcsAuthTokenStatus,
    generation: Option<i64>,
    problem: ProviderError,
    now: &Time,
) -> bool {
    status.observed_generation = generation;
    let ProviderError {
        reason,
        message,
        permanent,
        ..
    } = problem;
    let stalled = permanent.then_some((reason, message.as_str()));
    conditions::set_stalled(&mut status.conditions, stalled, generation, now);
    conditions::remove(&mut status.conditions, types::RECONCILING);
    conditions::set(
        &mut status.conditions,
        Desired {
            type_: types::READY,
            status: ConditionStatus::False,
            reason,
            message,
        },
        generation,
        now,
    )
}

/// A resolution failure as a status problem; a namespace the cache has not seen yet is not
/// the user's mistake, so it is not permanent.
pub fn resolve_problem(e: &ResolveError) -> ProviderError {
    match e {
        ResolveError::Hierarchy(HierarchyError::NamespaceNotFound { .. }) => {
            ProviderError::transient(e.reason(), e.to_string())
        }
        // The message names the field the user wrote the missing name into.
        ResolveError::NotFound { .. } => {
            ProviderError::config(e.reason(), format!("spec.connection: {e}"))
        }
        _ => ProviderError::config(e.reason(), e.to_string()),
    }
}

#[cfg(test)]
mod tests;
