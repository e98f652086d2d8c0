//! Withdrawing what a token holds once it lost the right to it (its connection deleted or made
//! unavailable, its namespace moved out, a ceiling tightened, its Secret renamed): the
//! credential is revoked where it was minted, when the provider can, and the Secret patchbay
//! wrote is deleted. A transient failure never withdraws anything.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tracing::info;

use super::context::Context;
use super::error::Error;
use super::output_secret::{Current, output_name};
use super::report::{Outcome, report};
use super::revocation::{revoke_stored, revoke_superseded};
use crate::api::token::{Issuer, SecretFormat};
use crate::api::{VcsAuthToken, VcsAuthTokenStatus};
use crate::conditions::{reasons, types};
use crate::output::{self, Ownership};
use crate::providers::ProviderError;

/// Revokes the credential in Secret `name` (through `issuer`) and deletes the Secret, if it is
/// patchbay's; returns whether there was one.
pub async fn remove_secret(
    ctx: &Context,
    token: &VcsAuthToken,
    name: &str,
    issuer: Option<&Issuer>,
    status: &mut VcsAuthTokenStatus,
    why: &str,
) -> Result<bool, Error> {
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &token.namespace().unwrap_or_default());
    let found = (api.get_opt(name).await).map_err(|e| Error::kube("read Secret", name, e))?;
    let Some(secret) =
        found.filter(|s| matches!(output::ownership(Some(s), token), Ownership::Ours))
    else {
        return Ok(false);
    };
    let current = Current::of(&secret, SecretFormat::Opaque);
    revoke_stored(ctx, token, issuer, &current, why).await;
    revoke_superseded(ctx, token, status, Some(&current), true).await;
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(true),
        Err(e) => Err(Error::kube("delete Secret", name, e)),
    }
}

/// Forgets the credential in the status.
fn forget(status: &mut VcsAuthTokenStatus) {
    status.token_id = None;
    status.issuer = None;
    status.issued_at = None;
    status.expires_at = None;
    status.renew_at = None;
    status.permissions.clear();
    status.repositories.clear();
    status.personal_access_token_source = None;
    status.superseded = None;
    status.secret_resource_version = None;
}

/// After a permanent refusal (`problem`): withdraws what the token holds and reports
/// `Withdrawn`, naming the refusal; with nothing to withdraw, reports the refusal itself.
pub async fn withdraw(
    ctx: &Context,
    token: &VcsAuthToken,
    mut status: VcsAuthTokenStatus,
    problem: ProviderError,
) -> Result<Action, Error> {
    let name = (status.secret_name.clone()).unwrap_or_else(|| output_name(token));
    let issuer = status.issuer.clone();
    let held = remove_secret(ctx, token, &name, issuer.as_ref(), &mut status, "withdrawn").await?;
    let withdrawn_before = (status.conditions.iter())
        .any(|c| c.type_ == types::READY && c.reason == reasons::WITHDRAWN);
    if !held && status.token_id.is_none() && !withdrawn_before {
        return report(ctx, token, status, Outcome::Refused(problem), None).await;
    }
    if held {
        info!(reason = problem.reason, "withdrew the credential");
    }
    forget(&mut status);
    status.secret_name = None;
    let withdrawn = ProviderError::config(
        reasons::WITHDRAWN,
        format!(
            "the credential was withdrawn: {} ({})",
            problem.message, problem.reason
        ),
    );
    report(ctx, token, status, Outcome::Refused(withdrawn), None).await
}

/// When a token's Secret was renamed: the credential in the old Secret is revoked and the
/// Secret deleted, so the new name starts from a new credential.
pub async fn retire_renamed(
    ctx: &Context,
    token: &VcsAuthToken,
    status: &mut VcsAuthTokenStatus,
    new_name: &str,
) -> Result<(), Error> {
    let Some(old) = status.secret_name.clone().filter(|old| old != new_name) else {
        return Ok(());
    };
    let issuer = status.issuer.clone();
    remove_secret(
        ctx,
        token,
        &old,
        issuer.as_ref(),
        status,
        "renamed Secret's",
    )
    .await?;
    forget(status);
    Ok(())
}
