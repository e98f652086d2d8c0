//! The VcsAuthToken reconciler: resolves the token's connection up the namespace tree and
//! reports where it was found, or why it cannot be used.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{instrument, warn};

use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};

use super::token_status::{request_fits, resolve_problem, set_outcome};
use super::{Context, Error, FIELD_MANAGER, mint};
use crate::api::token::ConnectionRef;
use crate::api::{Connection, VcsAuthToken, VcsAuthTokenStatus};
use crate::conditions::types;
use crate::hierarchy::{self, HierarchyError, ResolveError};
use crate::providers::ConfigError;

/// How often a token's resolution is re-checked without any change.
const RECHECK: Duration = Duration::from_secs(600);

/// The finalizer that revokes a token's credential before the token goes away.
pub const FINALIZER: &str = "patchbay.dev/revoke";

/// Reconciles one VcsAuthToken: adds the finalizer, then resolves and mints (or, on deletion,
/// revokes and lets go).
#[instrument(skip(token, ctx), fields(namespace = token.namespace().unwrap_or_default(), name = token.name_any()))]
pub async fn reconcile(token: Arc<VcsAuthToken>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key(&token);
    let namespace = token.namespace().unwrap_or_default();
    if !ctx.serves(&namespace) {
        return Ok(Action::await_change());
    }
    ctx.count_reconcile(&key);
    let api: Api<VcsAuthToken> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, token, |event| async {
        match event {
            FinalizerEvent::Apply(token) => apply(token, ctx.clone()).await,
            FinalizerEvent::Cleanup(token) => mint::cleanup(&token, &ctx)
                .await
                .map(|()| Action::await_change()),
        }
    })
    .await
    .map_err(|e| Error::Finalizer {
        object: key.clone(),
        message: e.to_string(),
    })
}

async fn apply(token: Arc<VcsAuthToken>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key(&token);
    let namespace = token.namespace().unwrap_or_default();
    let name = &token.spec.connection;
    let tree = ctx.tree();
    let connections = ctx.connections.state();
    let find = |ns: &str| {
        connections
            .iter()
            .find(|c| c.namespace().as_deref() == Some(ns) && c.name_any() == *name)
    };
    let mut status = token.status.clone().unwrap_or_default();
    let (outcome, stalled) =
        match hierarchy::resolve(&tree, &namespace, name, |ns| find(ns).map(|c| &c.spec)) {
            Err(e) => {
                status.connection_ref = None;
                // A namespace the cache has not seen yet is not the user's mistake: no Stalled.
                let stalled = !matches!(
                    e,
                    ResolveError::Hierarchy(HierarchyError::NamespaceNotFound { .. })
                );
                (Err(resolve_problem(&e)), stalled)
            }
            Ok(found) => {
                let at = ConnectionRef {
                    namespace: found.namespace.clone(),
                    name: name.clone(),
                };
                status.connection_ref = Some(at.clone());
                match find(&found.namespace) {
                    None => (
                        Err(ConfigError::new(
                            "ConnectionNotFound",
                            "the connection vanished",
                        )),
                        false,
                    ),
                    Some(conn) => match request_fits(&token.spec, conn, &at)
                        .and_then(|()| connection_ready(conn, &at))
                    {
                        Err(e) => {
                            let stalled = e.reason != "ConnectionNotReady";
                            (Err(e), stalled)
                        }
                        Ok(()) if conn.spec.github_app.is_some() => {
                            return mint::github(&token, conn.clone(), at, status, &ctx).await;
                        }
                        Ok(()) if conn.spec.aws.is_some() || conn.spec.ecr.is_some() => {
                            return super::aws::mint(&token, conn.clone(), at, status, &ctx).await;
                        }
                        Ok(()) => (Ok(not_minted_yet(conn, &at)), false),
                    },
                }
            }
        };
    let transition = set_outcome(
        &mut status,
        token.meta().generation,
        outcome,
        stalled,
        &ctx.now(),
    );
    write_status(&ctx, &token, &status).await?;
    if transition {
        publish_ready(&ctx, &token, &status, "Resolve").await;
    }
    ctx.succeeded(&key);
    Ok(Action::requeue(RECHECK))
}

/// Writes a token's status when it differs from the stored one.
pub async fn write_status(
    ctx: &Context,
    token: &VcsAuthToken,
    status: &VcsAuthTokenStatus,
) -> Result<(), Error> {
    if token.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<VcsAuthToken> =
        Api::namespaced(ctx.client.clone(), &token.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": VcsAuthToken::api_version(&()),
        "kind": VcsAuthToken::kind(&()),
        "status": status,
    });
    api.patch_status(
        &token.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::kube("write the status of", &key(token), e))?;
    Ok(())
}

/// Publishes the Ready condition as an Event (Normal when True, Warning otherwise).
pub async fn publish_ready(
    ctx: &Context,
    token: &VcsAuthToken,
    status: &VcsAuthTokenStatus,
    action: &str,
) {
    ctx.publish_condition(
        &token.object_ref(&()),
        &status.conditions,
        types::READY,
        action,
    )
    .await;
}

/// Whether the connection has been checked Ready for its current generation.
fn connection_ready(conn: &Connection, at: &ConnectionRef) -> Result<(), ConfigError> {
    let ready = conn.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == types::READY && c.observed_generation == conn.meta().generation)
    });
    match ready {
        Some(c) if c.is_true(types::READY) => Ok(()),
        Some(c) => Err(ConfigError::new(
            "ConnectionNotReady",
            format!(
                "Connection {}/{} is not ready: {}",
                at.namespace, at.name, c.message
            ),
        )),
        None => Err(ConfigError::new(
            "ConnectionNotReady",
            format!(
                "Connection {}/{} has not been checked yet",
                at.namespace, at.name
            ),
        )),
    }
}

/// The outcome for a usable connection of a kind patchbay does not mint from yet.
fn not_minted_yet(conn: &Connection, at: &ConnectionRef) -> (&'static str, String) {
    (
        "MintingNotAvailable",
        format!(
            "resolved to Connection {}/{}; this release does not mint {} credentials yet",
            at.namespace,
            at.name,
            conn.spec.kind().map(|k| k.field_name()).unwrap_or_default()
        ),
    )
}

/// Retries a failed reconcile with exponential backoff.
pub fn error_policy(token: Arc<VcsAuthToken>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&key(&token));
    warn!(error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The key a token's counters and backoff are kept under.
pub fn key(token: &VcsAuthToken) -> String {
    format!(
        "VcsAuthToken {}/{}",
        token.namespace().unwrap_or_default(),
        token.name_any()
    )
}

/// The tokens a change to Connection `conn` may affect: those naming it in its namespace's
/// subtree.
pub fn tokens_for_connection(
    ctx: &Context,
    tokens: &Store<VcsAuthToken>,
    conn: &Connection,
) -> Vec<ObjectRef<VcsAuthToken>> {
    let Some(ns) = conn.namespace() else {
        return Vec::new();
    };
    let subtree = ctx.tree().subtree(&ns);
    let name = conn.name_any();
    tokens
        .state()
        .iter()
        .filter(|t| {
            t.spec.connection == name && t.namespace().is_some_and(|n| subtree.contains(&n))
        })
        .map(|t| ObjectRef::from_obj(t.as_ref()))
        .collect()
}

/// The tokens a change to a namespace may affect: those in its subtree.
pub fn tokens_for_namespace(
    ctx: &Context,
    tokens: &Store<VcsAuthToken>,
    ns: &PartialObjectMeta<Namespace>,
) -> Vec<ObjectRef<VcsAuthToken>> {
    let Some(name) = &ns.metadata.name else {
        return Vec::new();
    };
    let subtree = ctx.tree().subtree(name);
    tokens
        .state()
        .iter()
        .filter(|t| t.namespace().is_some_and(|n| subtree.contains(&n)))
        .map(|t| ObjectRef::from_obj(t.as_ref()))
        .collect()
}

/// The token that owns a Secret patchbay wrote (by its `patchbay.dev/token` label).
pub fn token_for_secret(
    secret: &PartialObjectMeta<k8s_openapi::api::core::v1::Secret>,
) -> Option<ObjectRef<VcsAuthToken>> {
    let ns = secret.metadata.namespace.as_deref()?;
    let name = secret
        .metadata
        .labels
        .as_ref()?
        .get(crate::output::TOKEN_LABEL)?;
    Some(ObjectRef::new(name).within(ns))
}
