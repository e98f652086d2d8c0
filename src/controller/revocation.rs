//! Revoking credentials through the provider that minted them: the one a new mint superseded,
//! and the one left when a token is deleted. A revocation's outcome is an Event, never a block.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::context::Context;
use super::error::Error;
use super::output_secret::{Current, output_name};
use crate::telemetry::Call;
use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::VcsAuthTokenStatus;
use crate::api::token::SecretFormat;
use crate::api::token::{Issuer, Superseded};
use crate::api::{ConnectionKind, VcsAuthToken};
use crate::output::SUPERSEDED_KEY;
use crate::output::{self, Ownership};
use crate::providers::{self, Provider, Revoked, Stored};

/// The longest a revocation may take.
const REVOKE_DEADLINE: Duration = Duration::from_secs(15);

/// Keeps the credential a new one replaces for the grace period, when there is one and its
/// provider revokes: its secret goes into the new Secret under [`SUPERSEDED_KEY`] and the
/// status records when to revoke it. Returns whether it was kept; if not, the caller revokes
/// it once the new Secret is in place.
pub fn keep_superseded(
    grace: std::time::Duration,
    status: &mut VcsAuthTokenStatus,
    old: &Current,
    new_secret: &mut Secret,
    now: Timestamp,
) -> bool {
    let revocable = (status.issuer.as_ref().and_then(issuer_kind))
        .is_some_and(|k| providers::for_kind(k).revocable());
    let (Some(value), Some(issuer), Some(id)) =
        (old.secret(), status.issuer.clone(), old.token_id())
    else {
        return false;
    };
    let Ok(at) = SignedDuration::try_from(grace).and_then(|g| now.checked_add(g)) else {
        return false;
    };
    if grace.is_zero() || !revocable {
        return false;
    }
    (new_secret.data.get_or_insert_with(Default::default))
        .insert(SUPERSEDED_KEY.into(), ByteString(value.clone()));
    status.superseded = Some(Box::new(Superseded {
        token_id: id.to_string(),
        issuer,
        revoke_at: Time(at),
    }));
    true
}

/// Revokes the credential a new one replaced at once, at the provider and API that minted it
/// as the token's status recorded them (never where the Secret, which the tenant can edit,
/// says).
pub async fn superseded(
    ctx: &Context,
    token: &VcsAuthToken,
    issuer: Option<&Issuer>,
    old: &Current,
) {
    revoke_stored(ctx, token, issuer, old, "superseded").await;
}

/// Revokes the superseded credential the status records once its grace has passed (or at
/// once, with `now`), with its secret from the Secret's [`SUPERSEDED_KEY`], and forgets it.
pub async fn revoke_superseded(
    ctx: &Context,
    token: &VcsAuthToken,
    status: &mut VcsAuthTokenStatus,
    current: Option<&Current>,
    now: bool,
) {
    let due =
        (status.superseded.as_ref()).is_some_and(|s| now || s.revoke_at.0 <= Timestamp::now());
    let Some(pending) = status.superseded.take_if(|_| due) else {
        return;
    };
    let value = current.and_then(|c| c.data.get(SUPERSEDED_KEY)).cloned();
    if let (Some(kind), Some(value)) = (issuer_kind(&pending.issuer), value) {
        let data = BTreeMap::from([("token".to_string(), value)]);
        let (provider, endpoint) = (
            providers::for_kind(kind),
            pending.issuer.endpoint.as_deref(),
        );
        revoke_data(ctx, token, provider, &data, endpoint, "superseded").await;
    }
}

/// Revokes a credential just minted that no Secret could be written for (`data` as the Secret
/// would have held it), through the provider that minted it.
pub async fn unsaved(
    ctx: &Context,
    token: &VcsAuthToken,
    provider: &dyn Provider,
    data: &BTreeMap<String, Vec<u8>>,
    endpoint: Option<&str>,
) {
    revoke_data(ctx, token, provider, data, endpoint, "unsaved").await;
}

/// Revokes `current` through the provider `issuer` names; nothing when no issuer was recorded.
pub async fn revoke_stored(
    ctx: &Context,
    token: &VcsAuthToken,
    issuer: Option<&Issuer>,
    current: &Current,
    why: &str,
) {
    let Some((kind, issuer)) = issuer.and_then(|i| issuer_kind(i).map(|k| (k, i))) else {
        return;
    };
    let provider = providers::for_kind(kind);
    let endpoint = issuer.endpoint.as_deref();
    revoke_data(ctx, token, provider, &current.data, endpoint, why).await;
}

/// Revokes the credential in `data` (Secret data) minted at `endpoint`, with the token's CA
/// bundle.
async fn revoke_data(
    ctx: &Context,
    token: &VcsAuthToken,
    provider: &dyn Provider,
    data: &BTreeMap<String, Vec<u8>>,
    endpoint: Option<&str>,
    why: &str,
) {
    let bundle = ctx.bundle_of(&super::status::token_key(token));
    let stored = Stored {
        data,
        endpoint,
        ca_bundle: bundle.as_ref(),
    };
    revoke(ctx, token, provider, &stored, why).await;
}

/// Revokes a credential through its provider; the outcome is an Event, never a block.
async fn revoke(
    ctx: &Context,
    token: &VcsAuthToken,
    provider: &dyn Provider,
    stored: &Stored<'_>,
    why: &str,
) {
    let call = provider.revoke(stored, &ctx.services);
    let what = (provider.kind(), Call::Revoke);
    let (type_, reason, note) = match ctx.call(what, REVOKE_DEADLINE, "revoking", call).await {
        Ok(Revoked::NotRevocable) => return,
        Ok(Revoked::Revoked) => (
            EventType::Normal,
            "Revoked",
            format!("revoked the {why} credential"),
        ),
        Err(e) => (
            EventType::Warning,
            "RevokeFailed",
            format!("could not revoke the {why} credential: {e}"),
        ),
    };
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Revoke".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &token.object_ref(&())).await {
        warn!(error = %e, "could not publish an event");
    }
}

/// The connection kind an issuer names, if it is one this release knows.
pub(super) fn issuer_kind(issuer: &Issuer) -> Option<ConnectionKind> {
    ConnectionKind::ALL
        .into_iter()
        .find(|k| k.field_name() == issuer.kind)
}

/// On deletion: revokes the token's current credential (failures become Events) and forgets
/// what patchbay kept about the token.
pub async fn cleanup(token: &VcsAuthToken, ctx: &Context) -> Result<(), Error> {
    revoke_current(token, ctx).await?;
    let namespace = token.namespace().unwrap_or_default();
    (ctx.telemetry.metrics).token_expiry(&namespace, &token.name_any(), None);
    // Nothing kept for the token outlives it: its CA bundle, backoff and dead end go too.
    let key = super::status::token_key(token);
    ctx.remember_bundle(key.clone(), None);
    ctx.succeeded(&key);
    Ok(())
}

/// Revokes the credential in the token's Secret, and a superseded one kept beside it.
async fn revoke_current(token: &VcsAuthToken, ctx: &Context) -> Result<(), Error> {
    let namespace = token.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = output_name(token);
    let Some(secret) =
        (secrets.get_opt(&name).await).map_err(|e| Error::kube("read Secret", &name, e))?
    else {
        return Ok(());
    };
    if !matches!(output::ownership(Some(&secret), token), Ownership::Ours) {
        return Ok(());
    }
    let current = Current::of(&secret, SecretFormat::Opaque);
    let issuer = token.status.as_ref().and_then(|s| s.issuer.as_ref());
    revoke_stored(ctx, token, issuer, &current, "deleted token's").await;
    let mut status = token.status.clone().unwrap_or_default();
    revoke_superseded(ctx, token, &mut status, Some(&current), true).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(kind: &str) -> Issuer {
        Issuer {
            kind: kind.into(),
            endpoint: Some("https://api.github.com".into()),
        }
    }

    #[test]
    fn the_status_names_the_provider_that_revokes() {
        assert_eq!(
            issuer_kind(&issuer("githubApp")),
            Some(ConnectionKind::GithubApp)
        );
        assert_eq!(issuer_kind(&issuer("aws")), Some(ConnectionKind::Aws));
        assert_eq!(issuer_kind(&issuer("telegraph")), None);
    }
}
