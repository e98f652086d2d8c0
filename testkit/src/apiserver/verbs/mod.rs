//! The verbs layer: get, create, update, delete, and dispatch to list, patch and the watch
//! (which `http/handlers.rs` starts). Each verb takes the locked store and a request, and
//! returns a [`Reply`].
//!
//! ```text
//!  mod.rs (get, create, update, delete; dispatch)
//!     ├──▶ listing.rs (list, deletecollection; selector.rs)   watch.rs (from handlers.rs)
//!     ├──▶ modify.rs (patch.rs; server-side apply in objects/fields.rs)
//!     ▼
//!  reply.rs: request bodies (JSON, YAML, protobuf.rs) and replies (convert.rs, table.rs)
//! ```
//!
//! `ri` is the resource as served (what the client sees), `sri` the resource that stores the
//! objects; they differ only for converted resources (see `convert.rs`).

pub(super) mod convert;
mod listing;
mod modify;
mod patch;
mod protobuf;
pub(super) mod reply;
mod selector;
mod table;
pub(super) mod watch;

use crate::apiserver::error::{ApiError, ApiResult, Cause, Subject};
use crate::apiserver::objects::lifecycle::{Manager, Part};
use crate::apiserver::request::{ApiRequest, FieldValidation, Method, ResourcePath};
use crate::apiserver::store::Store;
use crate::apiserver::store::meta::meta_str;
use crate::apiserver::store::resources::ResourceInfo;
use reply::{Reply, body_json, delete_options, object_bytes, object_reply};
use serde_json::{Value, json};
use std::sync::Arc;

/// Runs one verb on a resource path; with `dryRun=All` nothing is kept.
pub fn handle(
    store: &mut Store,
    req: &ApiRequest,
    p: &ResourcePath,
    ri: &Arc<ResourceInfo>,
) -> ApiResult<Reply> {
    if let Some(d) = req.param("dryRun").filter(|d| *d != "All") {
        return Err(ApiError::bad_request(format!(
            "unsupported dry run value {d:?}, only \"All\" is supported"
        )));
    }
    let in_body = req.method == Method::Delete
        && serde_json::from_slice::<Value>(&req.body).is_ok_and(|b| {
            b["dryRun"]
                .as_array()
                .is_some_and(|d| d.contains(&json!("All")))
        });
    let options = match req.method {
        Method::Post => Some("CreateOptions"),
        Method::Put => Some("UpdateOptions"),
        Method::Patch => Some("PatchOptions"),
        _ => None,
    };
    store.field_validation = match options {
        Some(o) => FieldValidation::from_param(req.param("fieldValidation"), o)?,
        None => FieldValidation::default(),
    };
    store.dry_run = req.param("dryRun").is_some() || in_body;
    let reply = dispatch(store, req, p, ri);
    store.dry_run = false;
    store.field_validation = FieldValidation::default();
    reply
}

fn dispatch(
    store: &mut Store,
    req: &ApiRequest,
    p: &ResourcePath,
    ri: &Arc<ResourceInfo>,
) -> ApiResult<Reply> {
    use Method::*;
    let sri = convert::storage_of(&store.registry, ri);
    let ns = p.namespace.clone().unwrap_or_default();
    let part = match p.subresource.as_deref() {
        None => Part::Main,
        Some("status") if ri.has_status => Part::Status,
        Some(other) => return Err(ApiError::no_route(&format!("{}/{other}", ri.plural))),
    };
    if ri.namespaced && p.namespace.is_none() && (p.name.is_some() || req.method != Get) {
        return Err(ApiError::no_route(&req.path));
    }
    if !ri.namespaced && p.namespace.is_some() {
        return Err(ApiError::no_route(&req.path));
    }
    match (req.method, p.name.as_deref()) {
        (Get, Some(name)) => {
            let obj = store.get_object(&sri, &ns, name)?;
            Ok(object_reply(200, ri, &obj, req, store.resource_version()))
        }
        (Get, None) => listing::list(store, req, p.namespace.as_deref(), ri, &sri),
        (Post, None) => {
            let body = body_json(req)?;
            if ri.custom {
                custom_body_types(ri, &body)?;
            }
            let obj = store.create(
                &sri,
                &ns,
                convert::to_storage(ri, body),
                Manager::Update(&req.field_manager()),
            )?;
            Ok(object_reply(201, ri, &obj, req, store.resource_version()))
        }
        (Put, Some(name)) => {
            let body = body_json(req)?;
            if ri.custom {
                custom_body_types(ri, &body)?;
                custom_update_has_resource_version(ri, name, &body)?;
            }
            let obj = store.update(
                &sri,
                &ns,
                name,
                convert::to_storage(ri, body),
                part,
                Manager::Update(&req.field_manager()),
            )?;
            Ok(object_reply(200, ri, &obj, req, store.resource_version()))
        }
        (Patch, Some(name)) => modify::patch(store, req, (ri, &sri), &ns, name, part),
        (Delete, Some(name)) => {
            let d = store.delete(&sri, &ns, name, &delete_options(req)?)?;
            let code = if d.pending { 202 } else { 200 };
            Ok(Reply::bytes(code, object_bytes(ri, &d.object)))
        }
        (Delete, None) => listing::delete_collection(store, req, &ns, ri, &sri),
        _ => Err(ApiError::method_not_allowed(format!(
            "{:?} is not supported on {}",
            req.method, req.path
        ))),
    }
}

/// A custom object's body must say what it is, as the real server's decoder for custom
/// objects (unlike the typed one of the built-in kinds) insists: 400 otherwise.
fn custom_body_types(ri: &ResourceInfo, body: &Value) -> ApiResult<()> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    if s("kind").is_empty() {
        let text = body.to_string();
        let excerpt: String = text.chars().take(80).collect();
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): Object 'Kind' is missing in '{excerpt}'",
            ri.kind
        )));
    }
    if s("apiVersion") != ri.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            s("apiVersion"),
            ri.api_version()
        )));
    }
    Ok(())
}

/// An update (PUT) of a custom object must carry the resourceVersion it read: the real server
/// allows unconditional updates for some built-in kinds only.
fn custom_update_has_resource_version(
    ri: &ResourceInfo,
    name: &str,
    body: &Value,
) -> ApiResult<()> {
    if !meta_str(body, "resourceVersion").is_empty() {
        return Ok(());
    }
    let cause = Cause::invalid(
        "metadata.resourceVersion",
        "Invalid value: 0: must be specified for an update",
    );
    let subject = Subject {
        group: &ri.group,
        resource: &ri.plural,
        name,
    };
    Err(ApiError::invalid_causes(&ri.plural, subject, &[cause]))
}
