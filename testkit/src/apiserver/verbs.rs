//! The resource verbs: get, create, update, delete, and dispatch to list and patch. Each takes
//! the locked store and a request, and returns a [`Reply`].
//!
//! `ri` is the resource as served (what the client sees), `sri` the resource that stores the
//! objects; they differ only for converted resources (see `convert.rs`).

use super::admit::FieldValidation;
use super::convert;
use super::error::{ApiError, ApiResult};
use super::lifecycle::{DeleteOptions, Manager, Part};
use super::listing;
use super::modify;
use super::patch::{self, PatchError};
use super::protobuf;
use super::request::{ApiRequest, ResourcePath};
use super::resources::ResourceInfo;
use super::store::{Obj, Store};
use super::table;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;

/// A finished response: status code, content type and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub code: u16,
    /// The body (JSON unless `content_type` says otherwise).
    pub body: Bytes,
    /// `Content-Type`.
    pub content_type: &'static str,
}

impl Reply {
    /// A JSON value with a status code.
    pub fn json(code: u16, v: &Value) -> Reply {
        Reply::bytes(code, Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
    }

    /// Ready JSON bytes with a status code.
    pub fn bytes(code: u16, body: Bytes) -> Reply {
        Reply {
            code,
            body,
            content_type: "application/json",
        }
    }

    /// An error's Status body.
    pub fn error(e: &ApiError) -> Reply {
        Reply::json(e.code, &e.to_status())
    }
}

/// The stored bytes, converted or with `apiVersion` rewritten when served differently.
pub fn object_bytes(ri: &ResourceInfo, obj: &Obj) -> Bytes {
    if convert::converted(ri) {
        let v = convert::from_storage(ri, &obj.value);
        return Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
    }
    let av = ri.api_version();
    if obj.value.get("apiVersion").and_then(Value::as_str) == Some(av.as_str()) {
        return obj.json.clone();
    }
    let mut v = obj.value.clone();
    v["apiVersion"] = json!(av);
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

/// An object reply: the object, or a one-row Table when the client asked for Tables.
pub fn object_reply(code: u16, ri: &ResourceInfo, obj: &Obj, req: &ApiRequest, rv: u64) -> Reply {
    if req.wants_table() {
        let include = req.param("includeObject").unwrap_or("Metadata");
        let v = convert::from_storage(ri, &obj.value);
        return Reply::json(
            code,
            &table::table(ri, &[&v], &rv.to_string(), None, include),
        );
    }
    if req.wants_metadata() {
        return Reply::json(code, &table::partial_metadata(&obj.value));
    }
    Reply::bytes(code, object_bytes(ri, obj))
}

/// The request body as JSON (or YAML).
pub fn body_json(req: &ApiRequest) -> ApiResult<Value> {
    if protobuf::is_protobuf(&req.body) {
        return protobuf::decode(&req.body).map_err(|e| {
            if e.starts_with(protobuf::UNSUPPORTED) {
                ApiError::unsupported_media_type(&e)
            } else {
                ApiError::bad_request(format!("the object provided is unrecognized: {e}"))
            }
        });
    }
    patch::parse_json_or_yaml(&req.body).map_err(|e| match e {
        PatchError::Malformed(m) | PatchError::Failed(m) => ApiError::bad_request(m),
    })
}

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
    let in_body = req.method == super::request::Method::Delete
        && serde_json::from_slice::<Value>(&req.body).is_ok_and(|b| {
            b["dryRun"]
                .as_array()
                .is_some_and(|d| d.contains(&json!("All")))
        });
    let options = match req.method {
        super::request::Method::Post => Some("CreateOptions"),
        super::request::Method::Put => Some("UpdateOptions"),
        super::request::Method::Patch => Some("PatchOptions"),
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
    use super::request::Method::*;
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
    if !super::meta::meta_str(body, "resourceVersion").is_empty() {
        return Ok(());
    }
    let cause = super::error::Cause::invalid(
        "metadata.resourceVersion",
        "Invalid value: 0: must be specified for an update",
    );
    let subject = super::error::Subject {
        group: &ri.group,
        resource: &ri.plural,
        name,
    };
    Err(ApiError::invalid_causes(&ri.plural, subject, &[cause]))
}

/// DeleteOptions from the query and body.
pub fn delete_options(req: &ApiRequest) -> ApiResult<DeleteOptions> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        body_json(req)?
    };
    let policy = req
        .param("propagationPolicy")
        .or_else(|| body.get("propagationPolicy").and_then(Value::as_str));
    let pre = |k: &str| {
        body.pointer(&format!("/preconditions/{k}"))
            .and_then(Value::as_str)
            .map(String::from)
    };
    Ok(DeleteOptions {
        uid: pre("uid"),
        resource_version: pre("resourceVersion"),
        orphan: policy == Some("Orphan"),
        foreground: policy == Some("Foreground"),
    })
}
