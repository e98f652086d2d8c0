//! The admission seam for custom objects.
//!
//! Every create and update of a custom object (main resource and `/status`) passes through
//! [`admit_custom_object`] before it is stored: pruning, defaulting, structural schema
//! validation and the CRD's CEL rules, as `testkit::admission` implements them, with a 422
//! Invalid Status naming the fields on failure.

use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::resources::ResourceInfo;
use crate::admission;

/// Admits a custom object against its CRD's schema (`info.schema`, the version's
/// `openAPIV3Schema`): returns the object to store (defaulted and pruned) or a 422 Invalid
/// [`ApiError`] naming the fields. `old` is the stored object on updates (for transition rules).
pub fn admit_custom_object(
    info: &ResourceInfo,
    mut object: Value,
    old: Option<&Value>,
) -> ApiResult<Value> {
    let Some(schema) = &info.schema else {
        return Ok(object);
    };
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
