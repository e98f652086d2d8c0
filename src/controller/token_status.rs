//! What a VcsAuthToken's status should say about its connection: where the namespace tree
//! resolved it, and whether the request fits the connection's kind. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::token::ConnectionRef;
use crate::api::{
    ConditionStatus, Connection, ConnectionKind, VcsAuthTokenSpec, VcsAuthTokenStatus,
};
use crate::conditions::{self, Desired, types};
use crate::hierarchy::ResolveError;
use crate::providers::ConfigError;

/// The request block a token sets, as the name of its field.
pub fn request_block(spec: &VcsAuthTokenSpec) -> Option<&'static str> {
    [
        (spec.github.is_some(), "github"),
        (spec.aws.is_some(), "aws"),
        (spec.ecr.is_some(), "ecr"),
        (spec.oauth.is_some(), "oauth"),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name))
}

/// The request block a connection kind serves (`None`: the kind's credential is projected as
/// it is, without a request block).
pub fn block_for(kind: ConnectionKind) -> Option<&'static str> {
    use ConnectionKind as K;
    match kind {
        K::GithubApp => Some("github"),
        K::Aws => Some("aws"),
        K::Ecr => Some("ecr"),
        K::GithubOAuth
        | K::Gitlab
        | K::BitbucketCloud
        | K::BitbucketServer
        | K::AzureDevOpsOAuth
        | K::Google
        | K::JetbrainsSpace => Some("oauth"),
        K::AzureDevOpsPat | K::DockerRegistry | K::NpmRegistry | K::PerforceAdmin | K::Slack => {
            None
        }
    }
}

/// Whether the token's request fits the connection it resolved to.
pub fn request_fits(
    token: &VcsAuthTokenSpec,
    conn: &Connection,
    at: &ConnectionRef,
) -> Result<(), ConfigError> {
    let Some(kind) = conn.spec.kind() else {
        return Err(ConfigError::new(
            "ConnectionNotReady",
            format!(
                "Connection {}/{} has no single provider block",
                at.namespace, at.name
            ),
        ));
    };
    let wanted = block_for(kind);
    let given = request_block(token);
    if wanted != given {
        let expected = wanted.map_or("no request block".to_string(), |b| format!("spec.{b}"));
        let found = given.map_or("no request block".to_string(), |b| format!("spec.{b}"));
        return Err(ConfigError::new(
            "ConnectionKindMismatch",
            format!(
                "Connection {}/{} is a {kind} connection, which takes {expected}; this token has {found}",
                at.namespace, at.name
            ),
        ));
    }
    if conn
        .spec
        .aws
        .as_ref()
        .is_some_and(|a| !a.available_for_build_steps)
    {
        return Err(ConfigError::new(
            "ConnectionNotAvailable",
            format!(
                "Connection {}/{} has spec.aws.availableForBuildSteps: false; it only serves as another connection's iamRole source",
                at.namespace, at.name
            ),
        ));
    }
    Ok(())
}

/// Sets `Ready` (and kstatus `Stalled`) from the outcome of resolving and checking the
/// connection; `Ok` carries the Ready message for a token that cannot be minted yet.
pub fn set_outcome(
    status: &mut VcsAuthTokenStatus,
    generation: Option<i64>,
    outcome: Result<(&'static str, String), ConfigError>,
    stalled: bool,
    now: &Time,
) -> bool {
    status.observed_generation = generation;
    let (reason, message) = match outcome {
        Ok(pair) => pair,
        Err(e) => (e.reason, e.message),
    };
    let problem = stalled.then_some((reason, message.as_str()));
    conditions::set_stalled(&mut status.conditions, problem, generation, now);
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

/// A resolution failure as a status problem.
pub fn resolve_problem(e: &ResolveError) -> ConfigError {
    ConfigError::new(e.reason(), e.to_string())
}

#[cfg(test)]
mod tests;
