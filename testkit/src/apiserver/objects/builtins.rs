//! What the real API server does to built-in kinds on every write, where clients notice:
//! a Secret's `stringData` is folded into base64 `data` and its `type` defaults to `Opaque`;
//! a Namespace carries the immutable `kubernetes.io/metadata.name` label; an `immutable`
//! Secret or ConfigMap keeps its data, and a Secret keeps its type; a Pod is defaulted and
//! starts `Pending` (pods.rs). A body of the wrong shape is refused as the real server's
//! decoder refuses it.

use super::pods;
use crate::apiserver::error::{ApiError, ApiResult, Cause};
use crate::apiserver::store::meta::{meta_mut, meta_str};
use crate::apiserver::store::resources::ResourceInfo;
use serde_json::{Map, Value, json};

/// Standard base64 with padding (what Secret `data` holds).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Applies the built-in kind's write-time defaulting to `obj` (no-op for other kinds).
pub fn normalize(ri: &ResourceInfo, obj: &mut Value) {
    if !ri.group.is_empty() || ri.custom {
        return;
    }
    match ri.kind.as_str() {
        "Secret" => {
            if let Some(Value::Object(plain)) =
                obj.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                if !obj.get("data").is_some_and(Value::is_object) {
                    obj["data"] = Value::Object(Map::new());
                }
                for (k, v) in plain {
                    let text = v.as_str().map_or_else(|| v.to_string(), String::from);
                    obj["data"][k.as_str()] = json!(base64(text.as_bytes()));
                }
            }
            if obj
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                obj["type"] = json!("Opaque");
            }
        }
        "Namespace" => {
            let name = meta_str(obj, "name").to_string();
            let meta = meta_mut(obj);
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            labels["kubernetes.io/metadata.name"] = json!(name);
        }
        "Pod" => pods::default(obj),
        _ => {}
    }
}

fn is_core(ri: &ResourceInfo, kind: &str) -> bool {
    ri.group.is_empty() && !ri.custom && ri.kind == kind
}

/// What the real server sets on a new object of a built-in kind, beyond [`normalize`]: a
/// Namespace's finalizer and `Active` phase, a Pod's tolerations and `Pending` status.
pub fn prepare_for_create(ri: &ResourceInfo, obj: &mut Value) {
    if is_core(ri, "Namespace") {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        obj["status"] = json!({"phase": "Active"});
    } else if is_core(ri, "Pod") {
        pods::prepare_for_create(obj);
    }
}

/// Validation of a built-in kind's content (creates and updates): causes for a 422.
pub fn object_causes(ri: &ResourceInfo, obj: &Value) -> Vec<Cause> {
    if is_core(ri, "Pod") {
        pods::causes(obj)
    } else {
        Vec::new()
    }
}

/// Why the real server could not decode `obj` as its kind, if it could not (it answers 400
/// BadRequest, `Kind in version "v1" cannot be handled as a Kind: ...`): metadata of the wrong
/// shape for every kind, and any field of the wrong type for the built-in kinds (checked by
/// decoding into their k8s-openapi types). Required fields may be missing: Go's decoder leaves
/// them empty for validation to report.
pub fn decode_problem(ri: &ResourceInfo, obj: &Value) -> Option<String> {
    fn check<T: serde::de::DeserializeOwned>(v: &Value) -> Option<String> {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("apiVersion");
            o.remove("kind");
        }
        match serde_json::from_value::<T>(v) {
            Err(e) if !e.to_string().starts_with("missing field") => Some(e.to_string()),
            _ => None,
        }
    }
    use k8s_openapi::api::{coordination::v1 as coordination, core::v1 as core};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    if let Some(problem) = obj
        .get("metadata")
        .filter(|m| !m.is_null())
        .and_then(check::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>)
    {
        return Some(format!("metadata: {problem}"));
    }
    if ri.custom {
        return None;
    }
    match (ri.group.as_str(), ri.kind.as_str()) {
        ("", "Namespace") => check::<core::Namespace>(obj),
        ("", "Secret") => check::<core::Secret>(obj),
        ("", "ConfigMap") => check::<core::ConfigMap>(obj),
        ("", "ServiceAccount") => check::<core::ServiceAccount>(obj),
        ("", "Event") => check::<core::Event>(obj),
        ("", "Pod") => check::<core::Pod>(obj),
        ("coordination.k8s.io", "Lease") => check::<coordination::Lease>(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            check::<apiextensions::CustomResourceDefinition>(obj)
        }
        _ => None,
    }
}

/// The real server's 400 for a body it cannot decode as the resource's kind.
pub fn decodable(ri: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    match decode_problem(ri, obj) {
        None => Ok(()),
        Some(problem) => Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {problem}",
            kind = ri.kind,
            v = ri.version
        ))),
    }
}

/// Update rules of built-in kinds: causes for a 422, empty when the update is allowed.
pub fn update_causes(ri: &ResourceInfo, old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if is_core(ri, "Pod") {
        return pods::update_causes(old, new);
    }
    if !ri.group.is_empty() || !matches!(ri.kind.as_str(), "Secret" | "ConfigMap") {
        return causes;
    }
    let forbid = |field: &str, message: &str| Cause {
        reason: "FieldValueForbidden",
        field: field.into(),
        message: message.into(),
    };
    if old.get("immutable") == Some(&Value::Bool(true)) {
        for f in ["data", "binaryData"] {
            if old.get(f) != new.get(f) {
                causes.push(forbid(
                    f,
                    "Forbidden: field is immutable when `immutable` is set",
                ));
            }
        }
        if new.get("immutable") != Some(&Value::Bool(true)) {
            causes.push(forbid(
                "immutable",
                "Forbidden: field is immutable when `immutable` is set",
            ));
        }
    }
    if ri.kind == "Secret" && old.get("type") != new.get("type") {
        causes.push(Cause::invalid("type", "Invalid value: field is immutable"));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::store::resources::Registry;

    #[test]
    fn base64_pads_like_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"hello world"), "aGVsbG8gd29ybGQ=");
    }

    #[test]
    fn a_secrets_string_data_becomes_base64_data_and_its_type_defaults_to_opaque() {
        let ri = Registry::with_builtins().get("", "v1", "secrets").unwrap();
        let mut s =
            json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "foo"}});
        normalize(&ri, &mut s);
        assert_eq!(s["data"], json!({"a": "eA==", "b": "Zm9v"}));
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
    }

    #[test]
    fn an_immutable_secret_keeps_its_data_and_every_secret_its_type() {
        let ri = Registry::with_builtins().get("", "v1", "secrets").unwrap();
        let old = json!({"type": "Opaque", "immutable": true, "data": {"a": "eA=="}});
        let mut new = old.clone();
        new["metadata"] = json!({"labels": {"x": "y"}});
        assert!(
            update_causes(&ri, &old, &new).is_empty(),
            "metadata may change"
        );
        new["data"]["a"] = json!("eQ==");
        assert_eq!(update_causes(&ri, &old, &new)[0].field, "data");
        let mut retyped = old.clone();
        retyped["type"] = json!("kubernetes.io/tls");
        assert_eq!(update_causes(&ri, &old, &retyped)[0].field, "type");
    }

    #[test]
    fn a_namespace_is_labelled_with_its_own_name() {
        let ri = Registry::with_builtins()
            .get("", "v1", "namespaces")
            .unwrap();
        let mut n = json!({"metadata": {"name": "team-a", "labels": {"x": "y"}}});
        normalize(&ri, &mut n);
        assert_eq!(
            n["metadata"]["labels"],
            json!({"x": "y", "kubernetes.io/metadata.name": "team-a"})
        );
    }
}
