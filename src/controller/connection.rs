//! The Connection reconciler: reads the referenced Secrets, decides the status, writes it when
//! it changed, and publishes an Event on every Ready transition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, instrument, warn};

use super::connection_status::{Facts, VERIFY_REQUESTED_AT, decide, needs_verify, set_verified};
use super::{Context, Error, FIELD_MANAGER};
use crate::api::ConnectionStatus;
use crate::api::{Connection, ConnectionSpec};
use crate::conditions::types;
use crate::providers::{SecretValues, github_app};

/// How often a Connection is re-checked without any change (Secrets rotate, roles change).
const RECHECK: Duration = Duration::from_secs(600);

/// Reconciles one Connection.
#[instrument(skip(conn, ctx), fields(namespace = conn.namespace().unwrap_or_default(), name = conn.name_any()))]
pub async fn reconcile(conn: Arc<Connection>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key(&conn);
    let namespace = conn.namespace().unwrap_or_default();
    if !ctx.serves(&namespace) {
        return Ok(Action::await_change());
    }
    ctx.count_reconcile(&key);
    let secrets = read_secrets(&ctx, &namespace, &conn.spec).await?;
    let tree = ctx.tree();
    let store = ctx.connections.clone();
    let others: Vec<Arc<Connection>> = store.state();
    let lookup = |ns: &str, name: &str| {
        others
            .iter()
            .find(|c| c.namespace().as_deref() == Some(ns) && c.name_any() == name)
            .map(|c| &c.spec)
    };
    let uid = conn.uid().unwrap_or_default();
    let decision = decide(
        &Facts {
            namespace: &namespace,
            name: &conn.name_any(),
            uid: &uid,
            generation: conn.meta().generation,
            spec: &conn.spec,
            previous: conn.status.as_ref(),
            secrets: &secrets,
            tree: &tree,
            lookup: &lookup,
            allow_default_chain: ctx.options.allow_default_credential_chain,
        },
        &ctx.now(),
    );
    let mut decision = decision;
    let requested = conn
        .annotations()
        .get(VERIFY_REQUESTED_AT)
        .map(String::as_str);
    let live = conn.spec.github_app.is_some() || conn.spec.aws_credentials().is_some();
    let mut written = conn.status.clone();
    if decision.ready
        && live
        && needs_verify(
            &decision.status,
            conn.meta().generation,
            requested,
            &ctx.now(),
        )
    {
        if conn.spec.github_app.is_none() && written.as_ref() != Some(&decision.status) {
            // AWS may take up to its operation timeout to answer: Ready does not wait for it.
            write_status(&ctx, &conn, &decision.status).await?;
            written = Some(decision.status.clone());
        }
        let outcome = match &conn.spec.github_app {
            Some(app) => github_app::verify(&ctx.github, app, &secrets).await,
            // GetCallerIdentity after assuming the connection's roles (ECR: the registry login).
            None => super::aws_chain::verify(&ctx, conn.clone()).await,
        };
        if let Err((reason, message)) = &outcome {
            warn!(%reason, %message, "live check failed");
        }
        if set_verified(
            &mut decision.status,
            conn.meta().generation,
            outcome,
            requested,
            &ctx.now(),
        ) {
            publish_verified(&ctx, &conn, &decision.status).await;
        }
    }
    let rotation_pending = if decision.ready {
        super::rotation::reconcile(&ctx, &conn, &mut decision.status, &secrets).await
    } else {
        None
    };
    if written.as_ref() != Some(&decision.status) {
        write_status(&ctx, &conn, &decision.status).await?;
    }
    if let Some((reason, message)) = &decision.transition {
        if decision.ready {
            info!(%reason, "connection is ready");
        } else {
            warn!(%reason, %message, "connection is not ready");
        }
        let object = conn.object_ref(&());
        ctx.publish_condition(&object, &decision.status.conditions, types::READY, "Check")
            .await;
    }
    ctx.succeeded(&key);
    Ok(Action::requeue(
        rotation_pending.map_or(RECHECK, |d| d.min(RECHECK)),
    ))
}

/// Writes a Connection's status.
async fn write_status(
    ctx: &Context,
    conn: &Connection,
    status: &ConnectionStatus,
) -> Result<(), Error> {
    let namespace = conn.namespace().unwrap_or_default();
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = json!({
        "apiVersion": Connection::api_version(&()),
        "kind": Connection::kind(&()),
        "status": status,
    });
    api.patch_status(
        &conn.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::kube("write the status of", &key(conn), e))?;
    Ok(())
}

/// Publishes the Verified condition as an Event.
async fn publish_verified(ctx: &Context, conn: &Connection, status: &ConnectionStatus) {
    ctx.publish_condition(
        &conn.object_ref(&()),
        &status.conditions,
        types::VERIFIED,
        "Verify",
    )
    .await;
}

/// Retries a failed reconcile with exponential backoff.
pub fn error_policy(conn: Arc<Connection>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&key(&conn));
    warn!(error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn key(conn: &Connection) -> String {
    format!(
        "Connection {}/{}",
        conn.namespace().unwrap_or_default(),
        conn.name_any()
    )
}

/// Reads the data of every Secret the spec references; absent Secrets stay absent.
async fn read_secrets(
    ctx: &Context,
    namespace: &str,
    spec: &ConnectionSpec,
) -> Result<SecretValues, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let mut values = SecretValues::default();
    for name in spec.secret_names() {
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| Error::kube("read Secret", &format!("{namespace}/{name}"), e))?;
        if let Some(secret) = found {
            let data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .chain(
                    secret
                        .string_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes())),
                )
                .collect();
            values.insert(name, data);
        }
    }
    Ok(values)
}

/// The Connections in the Secret's namespace that reference it.
pub fn connections_for_secret(
    ctx: &Context,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<Connection>> {
    let (Some(ns), Some(name)) = (&secret.metadata.namespace, &secret.metadata.name) else {
        return Vec::new();
    };
    ctx.connections
        .state()
        .iter()
        .filter(|c| {
            c.namespace().as_ref() == Some(ns) && c.spec.secret_names().contains(&name.as_str())
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
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
