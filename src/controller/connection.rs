//! The Connection reconciler: reads the referenced Secrets, decides the status, writes it when
//! it changed, and publishes an Event on every Ready transition.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{info, instrument, warn};

use super::connection_status::{
    Decision, Facts, VERIFY_REQUESTED_AT, decide, needs_verify, set_verified,
};
use super::context::Context;
use super::error::{Error, within};
use super::secrets;
use super::status::{self, connection_key as key};
use crate::api::{Connection, ConnectionSpec, ConnectionStatus};
use crate::conditions::types;
use crate::providers::{self, Env, SecretRead, SecretValues, Verification};
use crate::telemetry::Call;

/// How often a Connection is re-checked without any change (Secrets rotate, roles change).
const RECHECK: Duration = Duration::from_secs(600);

/// How long a live check may run before Ready is written without waiting for it (AWS may take
/// up to its operation timeout to answer).
const READY_FIRST_AFTER: Duration = Duration::from_secs(1);

/// The longest a live check may take, all its calls together.
const VERIFY_DEADLINE: Duration = Duration::from_secs(60);

/// Reconciles one Connection.
#[instrument(skip(conn, ctx), fields(namespace = conn.namespace().unwrap_or_default(), name = conn.name_any()))]
pub async fn reconcile(conn: Arc<Connection>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key(&conn);
    let namespace = conn.namespace().unwrap_or_default();
    if !ctx.serves(&namespace) {
        return Ok(Action::await_change());
    }
    ctx.count_reconcile(&key);
    // The cache may not hold this leader's own last status write yet: decide from that write
    // (a check it records is not run twice), with no read of the Connection.
    let conn = match ctx.last_connection_status(&conn) {
        Some(written) => Arc::new(Connection {
            status: Some(written),
            ..conn.as_ref().clone()
        }),
        None => conn,
    };
    let mut secrets = read_secrets(&ctx, &namespace, &conn.spec).await?;
    let snapshot = ctx.snapshot();
    let env = snapshot.env();
    let requested = conn
        .annotations()
        .get(VERIFY_REQUESTED_AT)
        .map(String::as_str);
    let generation = conn.meta().generation;
    let facts = Facts {
        conn: &conn,
        secrets: &secrets,
        env: &env,
    };
    let mut decision = decide(&facts, &ctx.now());
    let mut stored = conn.status.clone();
    if decision.ready && needs_verify(&decision.status, generation, requested, &ctx.now()) {
        let (outcome, written) = match super::secrets::ca_bundle(&ctx, &conn).await {
            Ok(bundle) => {
                let env = Env {
                    ca_bundle: bundle.as_ref(),
                    ..env
                };
                verify(&ctx, &conn, &env, &mut secrets, &decision.status).await?
            }
            Err(e) => (Verification::Failed(e), None),
        };
        stored = written.or(stored);
        if let Verification::Failed(e) = &outcome {
            warn!(reason = e.reason, message = %e.message, "live check failed");
        }
        if set_verified(
            &mut decision.status,
            generation,
            outcome,
            requested,
            &ctx.now(),
        ) {
            let conditions = &decision.status.conditions;
            status::publish(&ctx, conn.as_ref(), conditions, types::VERIFIED, "Verify").await;
        }
    }
    let rotation_pending = if decision.ready {
        super::rotation::reconcile(&ctx, &conn, &mut decision.status, &secrets).await
    } else {
        None
    };
    if stored.as_ref() != Some(&decision.status) {
        status::apply_connection(ctx.as_ref(), conn.as_ref(), &decision.status).await?;
    }
    report_transition(&ctx, &conn, &decision).await;
    ctx.succeeded(&key);
    Ok(Action::requeue(
        rotation_pending.map_or(RECHECK, |d| d.min(RECHECK)),
    ))
}

/// Runs the provider's live check, with the Secrets its inputs name beyond the connection's
/// own read first. A check that takes longer than [`READY_FIRST_AFTER`] does not hold Ready
/// back: the decided status is written first and returned as what is stored now.
async fn verify(
    ctx: &Context,
    conn: &Connection,
    env: &Env<'_>,
    secrets: &mut SecretValues,
    decided: &ConnectionStatus,
) -> Result<(Verification, Option<ConnectionStatus>), Error> {
    let provider = match providers::for_spec(&conn.spec) {
        Ok(p) => p,
        Err(e) => return Ok((Verification::Failed(e), None)),
    };
    let reads: Vec<SecretRead> = match provider.inputs(conn, env) {
        Ok(inputs) => (inputs.reads.into_iter())
            .filter(|r| !secrets.has(&r.namespace, &r.name))
            .collect(),
        Err(e) => return Ok((Verification::Failed(e), None)),
    };
    if let Err(e) = secrets::read(ctx, &reads, secrets).await {
        return Ok((Verification::Failed(e.into()), None));
    }
    let call = provider.verify(conn, env, secrets, &ctx.services);
    let check = async {
        let started = std::time::Instant::now();
        let deadline = within(VERIFY_DEADLINE, "the live check", async { Ok(call.await) });
        let outcome = deadline.await.unwrap_or_else(Verification::Failed);
        let ok = !matches!(outcome, Verification::Failed(_));
        let kind = provider.kind().field_name();
        (ctx.telemetry.metrics).call(kind, Call::Verify, ok, started.elapsed());
        outcome
    };
    tokio::pin!(check);
    tokio::select! {
        outcome = &mut check => Ok((outcome, None)),
        () = tokio::time::sleep(READY_FIRST_AFTER) => {
            let written = (conn.status.as_ref() != Some(decided)).then(|| decided.clone());
            if written.is_some() {
                status::apply_connection(ctx, conn, decided).await?;
            }
            Ok((check.await, written))
        }
    }
}

/// Logs a Ready transition and publishes it as an Event.
async fn report_transition(ctx: &Context, conn: &Connection, decision: &Decision) {
    let Some((reason, message)) = &decision.transition else {
        return;
    };
    if decision.ready {
        info!(%reason, "connection is ready");
    } else {
        warn!(%reason, %message, "connection is not ready");
    }
    let conditions = &decision.status.conditions;
    status::publish(ctx, conn, conditions, types::READY, "Check").await;
}

/// Retries a failed reconcile with exponential backoff.
pub fn error_policy(conn: Arc<Connection>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&key(&conn), error.is_conflict());
    warn!(error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Reads the data of every Secret the spec references; absent Secrets stay absent.
async fn read_secrets(
    ctx: &Context,
    namespace: &str,
    spec: &ConnectionSpec,
) -> Result<SecretValues, Error> {
    let mut values = SecretValues::new(namespace);
    let reads: Vec<SecretRead> = (spec.secret_names().into_iter())
        .map(|name| SecretRead::new(namespace, name))
        .collect();
    // Kept in memory while the Secret watch says they are current, shared with the tokens.
    secrets::read_kept(ctx, &reads, &mut values).await?;
    Ok(values)
}

/// The Connections in the Secret's namespace that reference it.
pub fn connections_for_secret(
    ctx: &Context,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<Connection>> {
    (connections_referencing(ctx, secret).iter())
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The cached Connections in the Secret's namespace that reference it by name.
pub fn connections_referencing(
    ctx: &Context,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<Arc<Connection>> {
    let (Some(ns), Some(name)) = (&secret.metadata.namespace, &secret.metadata.name) else {
        return Vec::new();
    };
    ctx.connections
        .state()
        .into_iter()
        .filter(|c| {
            c.namespace().as_ref() == Some(ns) && c.spec.secret_names().contains(&name.as_str())
        })
        .collect()
}

/// The iamRole Connections whose source is named `name` (any namespace: the tree decides).
pub fn connections_using_source(ctx: &Context, name: &str) -> Vec<ObjectRef<Connection>> {
    ctx.connections
        .state()
        .iter()
        .filter(|c| {
            c.spec
                .aws_credentials()
                .and_then(|cr| cr.iam_role.as_ref())
                .is_some_and(|r| r.connection == name)
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The Connections a namespace change may affect: iamRole Connections below it (their source
/// resolves up the tree) and, with a namespace selector, every Connection in the namespace
/// itself, which may just have joined the selection (its Connections were skipped until now,
/// or were seen before the namespace was).
pub fn connections_for_namespace(
    ctx: &Context,
    ns: &PartialObjectMeta<Namespace>,
) -> Vec<ObjectRef<Connection>> {
    let Some(name) = &ns.metadata.name else {
        return Vec::new();
    };
    let subtree = ctx.tree().subtree(name);
    let selected = ctx.options.namespace_selector.is_some();
    ctx.connections
        .state()
        .iter()
        .filter(|c| {
            let Some(namespace) = c.namespace() else {
                return false;
            };
            let chained = c
                .spec
                .aws_credentials()
                .is_some_and(|cr| cr.iam_role.is_some());
            (chained && subtree.contains(&namespace)) || (selected && namespace == *name)
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}
