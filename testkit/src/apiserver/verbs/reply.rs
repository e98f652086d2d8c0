//! What every verb reads and writes: the request body (JSON, YAML or protobuf), the
//! DeleteOptions of a delete, and the [`Reply`], with an object in the form its resource
//! serves it (converted, or as a one-row Table or partial metadata when the client asked).

use super::convert;
use super::patch::{self, PatchError};
use super::protobuf;
use super::table;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::objects::lifecycle::DeleteOptions;
use crate::apiserver::request::ApiRequest;
use crate::apiserver::store::Obj;
use crate::apiserver::store::resources::ResourceInfo;
use bytes::Bytes;
use serde_json::{Value, json};

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
