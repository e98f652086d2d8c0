//! The admission seam for custom objects.
//!
//! Every create and update of a custom object (main resource and `/status`) passes through
//! [`admit_custom_object`] before it is stored: pruning (or, with `fieldValidation=Strict`,
//! refusing unknown fields), defaulting, structural schema validation and the CRD's CEL rules,
//! as `testkit::admission` implements them, with a 422 Invalid Status naming the fields.

use crate::admission;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::request::FieldValidation;
use crate::apiserver::store::resources::ResourceInfo;
use serde_json::Value;

/// Admits a custom object against its CRD's schema (`info.schema`, the version's
/// `openAPIV3Schema`): returns the object to store (defaulted and pruned) or a 422 Invalid
/// [`ApiError`] naming the fields. `old` is the stored object on updates (for transition
/// rules); `validation` is the request's `fieldValidation` directive. Called for the main
/// resource and for `/status` writes, before generation and no-op checks, so defaulted values
/// count as the object's content.
pub fn admit_custom_object(
    info: &ResourceInfo,
    mut object: Value,
    old: Option<&Value>,
    validation: FieldValidation,
) -> ApiResult<Value> {
    let Some(schema) = &info.schema else {
        return Ok(object);
    };
    if validation == FieldValidation::Strict
        && let Some(path) = pruned_field(schema, &object)
    {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: unknown field \"{path}\""
        )));
    }
    match admission::admit(schema, &mut object, old) {
        Ok(()) => Ok(object),
        Err(errors) => {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let status = admission::invalid_status(&info.kind, &info.group, name, &errors);
            Err(ApiError {
                code: 422,
                reason: "Invalid",
                message: status["message"].as_str().unwrap_or_default().to_string(),
                details: status["details"].clone(),
            })
        }
    }
}

/// The path of the first field of `object` (`spec.a.b`) that `schema` does not declare, which
/// pruning would remove.
pub fn pruned_field(schema: &Value, object: &Value) -> Option<String> {
    let mut pruned = object.clone();
    admission::prune(schema, &mut pruned);
    first_difference(object, &pruned, "")
}

/// The path of the first field in `full` that pruning removed from `pruned`.
fn first_difference(full: &Value, pruned: &Value, at: &str) -> Option<String> {
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match (full, pruned) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, v)| match b.get(k) {
            None => Some(join(k)),
            Some(w) => first_difference(v, w, &join(k)),
        }),
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{at}[{i}]"))),
        _ => None,
    }
}
