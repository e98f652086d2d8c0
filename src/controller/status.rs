//! Writing status and publishing condition Events, for both reconcilers; below them, so
//! neither imports the other.

use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;

use super::context::Context;
use super::error::Error;
use crate::api::{Condition, Connection, VcsAuthToken};

/// The field manager patchbay writes with.
pub const FIELD_MANAGER: &str = "patchbay";

/// The key a token's counters and backoff are kept under.
pub fn token_key(token: &VcsAuthToken) -> String {
    format!(
        "VcsAuthToken {}/{}",
        token.namespace().unwrap_or_default(),
        token.name_any()
    )
}

/// The key a connection's counters and backoff are kept under.
pub fn connection_key(conn: &Connection) -> String {
    format!(
        "Connection {}/{}",
        conn.namespace().unwrap_or_default(),
        conn.name_any()
    )
}

/// A namespaced resource whose status patchbay writes: a Connection or a VcsAuthToken.
pub trait StatusObject:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + HasStatus<Status: Serialize + PartialEq>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> StatusObject for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + HasStatus<Status: Serialize + PartialEq>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
{
}

/// `object` as the API server holds it now, for when the cache may lag this operator's own
/// last write.
pub async fn live<K: StatusObject>(ctx: &Context, object: &K, key: &str) -> Result<K, Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    (api.get(&object.name_any()).await).map_err(|e| Error::kube("read", key, e))
}

/// Writes `status` on `object` with server-side apply, when it differs from the stored one.
pub async fn write<K: StatusObject>(
    ctx: &Context,
    object: &K,
    status: &K::Status,
    key: &str,
) -> Result<(), Error> {
    if object.status() == Some(status) {
        return Ok(());
    }
    apply(ctx, object, status, key).await
}

/// Writes `status` on `object` with server-side apply.
pub async fn apply<K: StatusObject>(
    ctx: &Context,
    object: &K,
    status: &K::Status,
    key: &str,
) -> Result<(), Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::kube("write the status of", key, e))?;
    Ok(())
}

/// Writes `status` on Connection `conn` and remembers it as this leader's last write (see
/// [`Context::last_connection_status`]).
pub async fn apply_connection(
    ctx: &Context,
    conn: &Connection,
    status: &crate::api::ConnectionStatus,
) -> Result<(), Error> {
    apply(ctx, conn, status, &connection_key(conn)).await?;
    ctx.wrote_connection_status(conn, status);
    Ok(())
}

/// Publishes the condition of `type_` as an Event on `object`: Normal when it holds, Warning
/// otherwise.
pub async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    conditions: &[Condition],
    type_: &str,
    action: &str,
) {
    ctx.publish_condition(&object.object_ref(&()), conditions, type_, action)
        .await;
}
