//! Revoking credentials through the provider that minted them: the one a new mint superseded,
//! and the one left when a token is deleted. A revocation's outcome is an Event, never a block.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::context::Context;
use super::error::Error;
use super::output_secret::{Current, output_name};
use crate::api::token::SecretFormat;
use crate::api::{ConnectionKind, VcsAuthToken};
use crate::output::{self, Ownership, annotations};
use crate::providers::github_app::GITHUB_API_ANNOTATION;
use crate::providers::{self, Minted, Provider, Revoked, Stored};

/// Revokes the credential a new one replaced, through the provider that minted it. Where that
/// is `provider` itself, what revoking needs comes from the new mint (which the operator
/// computed), not from the old Secret's annotations.
pub async fn superseded(
    ctx: &Context,
    token: &VcsAuthToken,
    provider: &dyn Provider,
    old: &Current,
    minted: &Minted,
) {
    let kind = minted_kind(old).unwrap_or(provider.kind());
    let mut notes = old.annotations.clone();
    if kind == provider.kind() {
        notes.extend(minted.revocation.clone());
    }
    let stored = Stored {
        data: &old.data,
        annotations: &notes,
    };
    revoke(ctx, token, providers::for_kind(kind), &stored, "superseded").await;
}

/// Revokes a credential through its provider; the outcome is an Event, never a block.
async fn revoke(
    ctx: &Context,
    token: &VcsAuthToken,
    provider: &dyn Provider,
    stored: &Stored<'_>,
    why: &str,
) {
    let (type_, reason, note) = match provider.revoke(stored, &ctx.services).await {
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

/// The kind a Secret's credential was minted from: its `patchbay.dev/connection-kind`
/// annotation, or GitHub for Secrets written before that annotation existed.
fn minted_kind(current: &Current) -> Option<ConnectionKind> {
    match current.annotations.get(annotations::CONNECTION_KIND) {
        Some(kind) => ConnectionKind::ALL
            .into_iter()
            .find(|k| k.field_name() == kind),
        None => (current.annotations.contains_key(GITHUB_API_ANNOTATION))
            .then_some(ConnectionKind::GithubApp),
    }
}

/// On deletion: revokes the token's current credential (failures become Events).
pub async fn cleanup(token: &VcsAuthToken, ctx: &Context) -> Result<(), Error> {
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
    if let Some(kind) = minted_kind(&current) {
        let provider = providers::for_kind(kind);
        revoke(ctx, token, provider, &current.stored(), "deleted token's").await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn current(notes: &[(&str, &str)]) -> Current {
        Current {
            has_credential: true,
            data: BTreeMap::new(),
            annotations: (notes.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_secret_names_the_kind_it_was_minted_from() {
        let aws = current(&[(annotations::CONNECTION_KIND, "aws")]);
        assert_eq!(minted_kind(&aws), Some(ConnectionKind::Aws));
        let unknown = current(&[(annotations::CONNECTION_KIND, "telegraph")]);
        assert_eq!(minted_kind(&unknown), None);
    }

    #[test]
    fn a_github_secret_written_before_the_kind_annotation_is_still_revocable() {
        let old = current(&[(GITHUB_API_ANNOTATION, "https://api.github.com")]);
        assert_eq!(minted_kind(&old), Some(ConnectionKind::GithubApp));
        assert_eq!(minted_kind(&current(&[])), None);
    }
}
