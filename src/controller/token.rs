//! The VcsAuthToken reconciler: resolves the token's connection up the namespace tree and
//! reports where it was found, or why it cannot be used.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use tracing::{instrument, warn};

use super::context::Context;
use super::error::Error;
use super::status::{self, token_key as key};
use super::token_status::{request_fits, resolve_problem, set_outcome};
use super::{pipeline, revocation, withdrawal};
use crate::api::token::ConnectionRef;
use crate::api::{Connection, VcsAuthToken};
use crate::conditions::{reasons, types};
use crate::hierarchy;
use crate::providers::ProviderError;

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
            FinalizerEvent::Cleanup(token) => revocation::cleanup(&token, &ctx)
                .await
                .map(|()| Action::await_change()),
        }
    })
    .await
    .map_err(|e| {
        use kube::runtime::finalizer::Error as Fin;
        let conflict = match &e {
            Fin::ApplyFailed(inner) | Fin::CleanupFailed(inner) => inner.is_conflict(),
            Fin::AddFinalizer(api) | Fin::RemoveFinalizer(api) => super::error::is_conflict(api),
            _ => false,
        };
        Error::Finalizer {
            object: key.clone(),
            message: e.to_string(),
            conflict,
        }
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
    let problem = match hierarchy::resolve(&tree, &namespace, name, |ns| find(ns).map(|c| &c.spec))
    {
        Err(e) => {
            status.connection_ref = None;
            resolve_problem(&e)
        }
        Ok(found) => {
            let at = ConnectionRef {
                namespace: found.namespace.clone(),
                name: name.clone(),
            };
            status.connection_ref = Some(at.clone());
            let vanished = "the connection vanished";
            match find(&found.namespace) {
                None => ProviderError::transient(reasons::CONNECTION_NOT_FOUND, vanished),
                Some(conn) => match request_fits(&token.spec, conn, &at)
                    .and_then(|()| connection_ready(conn, &at))
                {
                    Err(e) => e,
                    Ok(()) => return pipeline::run(&token, conn.clone(), at, status, &ctx).await,
                },
            }
        }
    };
    if problem.permanent {
        // The token lost the right to what it holds.
        let result = withdrawal::withdraw(&ctx, &token, status, problem).await;
        return result;
    }
    let transition = set_outcome(&mut status, token.meta().generation, problem, &ctx.now());
    status::write(ctx.as_ref(), token.as_ref(), &status, &key).await?;
    if transition {
        status::publish(
            &ctx,
            token.as_ref(),
            &status.conditions,
            types::READY,
            "Resolve",
        )
        .await;
    }
    ctx.succeeded(&key);
    Ok(Action::requeue(RECHECK))
}

/// Whether the connection has been checked Ready for its current generation.
fn connection_ready(conn: &Connection, at: &ConnectionRef) -> Result<(), ProviderError> {
    let ready = conn.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == types::READY && c.observed_generation == conn.meta().generation)
    });
    match ready {
        Some(c) if c.is_true(types::READY) => Ok(()),
        Some(c) => Err(ProviderError::transient(
            reasons::CONNECTION_NOT_READY,
            format!(
                "Connection {}/{} is not ready: {}",
                at.namespace, at.name, c.message
            ),
        )),
        None => Err(ProviderError::transient(
            reasons::CONNECTION_NOT_READY,
            format!(
                "Connection {}/{} has not been checked yet",
                at.namespace, at.name
            ),
        )),
    }
}

/// Retries a failed reconcile with exponential backoff.
pub fn error_policy(token: Arc<VcsAuthToken>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&key(&token), error.is_conflict());
    warn!(error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// A reference to token `t` for the controller's queue: its namespace and name only. One made
/// with `ObjectRef::from_obj` also carries its resourceVersion and uid, which the queue does not
/// use and its scheduler keeps until the token's renewal (see `name_only` in `mod.rs`).
fn queued(t: &VcsAuthToken) -> ObjectRef<VcsAuthToken> {
    ObjectRef::new(&t.name_any()).within(&t.namespace().unwrap_or_default())
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
        .map(|t| queued(t))
        .collect()
}

/// The tokens a change to a connection's Secret may affect: those of every connection that
/// references it (a changed password reaches every projection of it).
pub fn tokens_for_connection_secret(
    ctx: &Context,
    tokens: &Store<VcsAuthToken>,
    secret: &PartialObjectMeta<k8s_openapi::api::core::v1::Secret>,
) -> Vec<ObjectRef<VcsAuthToken>> {
    let mut refs: Vec<_> = (super::connection::connections_referencing(ctx, secret).iter())
        .flat_map(|conn| tokens_for_connection(ctx, tokens, conn))
        .collect();
    refs.extend(tokens_for_grant(tokens, secret));
    refs
}

/// The tokens whose OAuth grant (`spec.oauth.refreshToken`) is `secret`: a refresh one of them
/// made, or a new grant a person stored, reaches all of them.
fn tokens_for_grant(
    tokens: &Store<VcsAuthToken>,
    secret: &PartialObjectMeta<k8s_openapi::api::core::v1::Secret>,
) -> Vec<ObjectRef<VcsAuthToken>> {
    let (Some(ns), Some(name)) = (&secret.metadata.namespace, &secret.metadata.name) else {
        return Vec::new();
    };
    let grant_is = |t: &VcsAuthToken| {
        let grant = t.spec.oauth.as_ref().and_then(|o| o.refresh_token.as_ref());
        t.namespace().as_ref() == Some(ns) && grant.is_some_and(|g| &g.name == name)
    };
    (tokens.state().iter())
        .filter(|t| grant_is(t))
        .map(|t| queued(t))
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
        .map(|t| queued(t))
        .collect()
}

/// The token that owns a Secret patchbay wrote (by its `patchbay.dev/token` label, which names
/// a token of the Secret's own namespace), unless the event is the operator's own write of it.
/// Every Secret event passes here (one watch of all Secrets); one without the label costs a
/// map lookup.
pub fn token_for_secret(
    ctx: &Context,
    secret: &PartialObjectMeta<k8s_openapi::api::core::v1::Secret>,
) -> Option<ObjectRef<VcsAuthToken>> {
    let meta = &secret.metadata;
    let token = meta.labels.as_ref()?.get(crate::output::TOKEN_LABEL)?;
    let (ns, name) = (meta.namespace.as_deref()?, meta.name.as_deref()?);
    if (meta.resource_version.as_deref()).is_some_and(|v| ctx.own_writes.own(ns, name, v)) {
        return None;
    }
    Some(ObjectRef::new(token).within(ns))
}
