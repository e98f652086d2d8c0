//! What a token's status says after the pipeline: a valid credential, a refusal, or a failed
//! mint that keeps the still-valid credential; and when to look again.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::runtime::controller::Action;
use tracing::warn;

use super::context::Context;
use super::error::Error;
use super::output_secret::Current;
use super::status::{self, token_key};
use crate::api::{ConditionStatus, VcsAuthToken, VcsAuthTokenStatus};
use crate::conditions::{self, Desired, reasons, types};
use crate::providers::{ProviderError, clamp_retry_after};

/// The shortest wait before looking at a token again.
const MIN_REQUEUE: Duration = Duration::from_secs(1);
/// How often a token without a renewal time is looked at again.
const RECHECK: Duration = Duration::from_secs(600);
/// The longest wait before looking at a token again: a provider's expiry far in the future
/// (or a hostile one) never becomes a timer the runtime cannot hold.
const MAX_REQUEUE: Duration = Duration::from_secs(3600);

/// What to report in a token's status.
pub enum Outcome {
    /// A usable credential is in the Secret.
    Valid(String),
    /// The request is refused before any provider call (or cannot be served by this release).
    Refused(ProviderError),
}

/// Writes the token's status for `outcome` and says when to look again (`renew_at`, or the
/// periodic check).
pub async fn report(
    ctx: &Context,
    token: &VcsAuthToken,
    mut status: VcsAuthTokenStatus,
    outcome: Outcome,
    renew_at: Option<Timestamp>,
) -> Result<Action, Error> {
    let generation = token.meta().generation;
    let now = ctx.now();
    status.observed_generation = generation;
    // A token's first credential, or one after its request changed, is no news worth an Event
    // (a write per mint, and a cache entry for six minutes): the status says it. Failures and
    // recoveries from them are.
    let was_failing = (status.conditions.iter())
        .any(|c| c.type_ == types::READY && c.status == ConditionStatus::False);
    let valid = matches!(outcome, Outcome::Valid(_));
    let (desired, stalled) = match outcome {
        Outcome::Valid(message) => {
            let valid = (ConditionStatus::True, reasons::TOKEN_VALID, message);
            (valid, None)
        }
        Outcome::Refused(e) => {
            let stalled = e.permanent.then(|| (e.reason, e.message.clone()));
            ((ConditionStatus::False, e.reason, e.message), stalled)
        }
    };
    let (status_, reason, message) = desired;
    let ready = Desired {
        type_: types::READY,
        status: status_,
        reason,
        message,
    };
    let transition = conditions::set(&mut status.conditions, ready, generation, &now);
    let problem = stalled.as_ref().map(|(r, m)| (*r, m.as_str()));
    conditions::set_stalled(&mut status.conditions, problem, generation, &now);
    conditions::remove(&mut status.conditions, types::RECONCILING);
    let key = token_key(token);
    status::write(ctx, token, &status, &key).await?;
    export_expiry(ctx, token, &status);
    if transition && (!valid || was_failing) {
        status::publish(ctx, token, &status.conditions, types::READY, "Mint").await;
    }
    ctx.succeeded(&key);
    // Look again at the renewal, or when a superseded credential's grace ends, if sooner.
    let revoke_at = status.superseded.as_ref().map(|s| s.revoke_at.0);
    let next = renew_at.into_iter().chain(revoke_at).min();
    Ok(Action::requeue(next.map_or(RECHECK, until)))
}

/// Publishes when the token's credential expires (the metric cert-manager exports per
/// certificate), or removes the series when it holds none.
fn export_expiry(ctx: &Context, token: &VcsAuthToken, status: &VcsAuthTokenStatus) {
    let namespace = token.meta().namespace.as_deref().unwrap_or_default();
    let name = token.meta().name.as_deref().unwrap_or_default();
    let expires = status.expires_at.as_ref().map(|t| t.0.as_second());
    ctx.telemetry.metrics.token_expiry(namespace, name, expires);
}

/// The time until `at`, at least [`MIN_REQUEUE`].
fn until(at: Timestamp) -> Duration {
    let wait = at.duration_since(Timestamp::now());
    Duration::try_from(wait.max(SignedDuration::ZERO))
        .unwrap_or(MAX_REQUEUE)
        .clamp(MIN_REQUEUE, MAX_REQUEUE)
}

/// A mint that failed: the still-valid credential stays and Ready stays True until it lapses;
/// retries back off (5 s to 5 min, honouring the provider's Retry-After / rate-limit reset),
/// faster while a still-valid credential nears its lapse (see [`crate::renewal::retry_delay`]).
pub async fn failed(
    ctx: &Context,
    token: &VcsAuthToken,
    mut status: VcsAuthTokenStatus,
    error: ProviderError,
    current: Option<&Current>,
) -> Result<Action, Error> {
    let now = Timestamp::now();
    let ProviderError {
        reason,
        message,
        retry_after,
        permanent,
    } = error;
    warn!(%reason, %message, "minting failed");
    if current.is_some_and(|c| c.has_credential) {
        let issuer = status
            .issuer
            .as_ref()
            .and_then(super::revocation::issuer_kind);
        let kind = issuer.map_or("unknown", |k| k.field_name());
        ctx.telemetry.metrics.renewal_failed(kind);
    }
    let key = token_key(token);
    let asked = clamp_retry_after(retry_after).unwrap_or_default();
    let left = (current.and_then(|c| c.valid_until(now)))
        .and_then(|until| Duration::try_from(until.duration_since(now)).ok());
    let delay = crate::renewal::retry_delay(ctx.backoff(&key, false), asked, left);
    ctx.hold(&key, delay);
    let generation = token.meta().generation;
    status.observed_generation = generation;
    let ready = match current.and_then(|c| c.valid_until(now)) {
        Some(until) => Desired {
            type_: types::READY,
            status: ConditionStatus::True,
            reason: reasons::RENEWAL_FAILING,
            message: format!(
                "renewal failed ({reason}): {message}; the current credential stays valid until {until}"
            ),
        },
        None if current.is_some_and(|c| c.has_credential) => Desired {
            type_: types::READY,
            status: ConditionStatus::False,
            reason: reasons::EXPIRED,
            message: format!("the credential expired and renewal failed ({reason}): {message}"),
        },
        None => Desired {
            type_: types::READY,
            status: ConditionStatus::False,
            reason,
            message: message.clone(),
        },
    };
    let t = ctx.now();
    let transition = conditions::set(&mut status.conditions, ready, generation, &t);
    let problem = permanent.then_some((reason, message.as_str()));
    conditions::set_stalled(&mut status.conditions, problem, generation, &t);
    status::write(ctx, token, &status, &key).await?;
    export_expiry(ctx, token, &status);
    if transition {
        status::publish(ctx, token, &status.conditions, types::READY, "Mint").await;
    }
    Ok(Action::requeue(delay))
}

/// When the status already records this credential as valid (after a restart, or on any event
/// that changes nothing), its renewal time and message: keeping them writes nothing. Recomputed
/// values would differ in sub-second detail and cost a status write per token.
pub fn keep_recorded(
    status: &VcsAuthTokenStatus,
    expires_at: Timestamp,
) -> Option<(Timestamp, String)> {
    let ready = (status.conditions.iter())
        .find(|c| c.is_true(types::READY) && c.reason == reasons::TOKEN_VALID)?;
    let recorded = status.expires_at.as_ref()?.0;
    let renew_at = status.renew_at.as_ref()?.0;
    (recorded.as_second() == expires_at.as_second()).then(|| (renew_at, ready.message.clone()))
}
