//! The admission seam for custom objects.
//!
//! Every create and update of a custom object (main resource and `/status`) passes through
//! [`admit_custom_object`] before it is stored. `testkit::admission` (structural schema
//! validation, defaulting, pruning, CEL rules, 422 Status bodies) plugs in here; until it is
//! merged this is a pass-through.

use super::error::{ApiError, ApiResult};
use super::resources::ResourceInfo;
use serde_json::Value;

/// The request's `fieldValidation` directive: what to do with fields the schema does not
/// know. kubectl sends `Strict` by default; the server's default is `Warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop unknown fields (the real server also returns a Warning header).
    #[default]
    Warn,
    /// Refuse the request when it carries unknown or duplicate fields (400 BadRequest,
    /// `strict decoding error: unknown field "spec.x"`).
    Strict,
}

impl FieldValidation {
    /// From the `fieldValidation` query parameter.
    pub fn from_param(p: Option<&str>) -> ApiResult<Self> {
        match p {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}, expected one of Ignore, Warn, Strict"
            ))),
        }
    }
}

/// Admits a custom object against its CRD's schema (`info.schema`, the version's
/// `openAPIV3Schema`): returns the object to store (defaulted and pruned) or a 422 Invalid
/// [`ApiError`](super::error::ApiError) naming the fields. `old` is the stored object on
/// updates (for transition rules); `validation` is the request's `fieldValidation`
/// directive. Called for the main resource and for `/status` writes, before generation and
/// no-op checks, so defaulted values count as the object's content.
///
/// Currently a no-op pass-through: `testkit::admission` replaces the body.
pub fn admit_custom_object(
    info: &ResourceInfo,
    object: Value,
    old: Option<&Value>,
    validation: FieldValidation,
) -> ApiResult<Value> {
    let _ = (info, old, validation);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_validation_directive_defaults_to_warn_and_rejects_unknown_values() {
        assert_eq!(
            FieldValidation::from_param(None).unwrap(),
            FieldValidation::Warn
        );
        assert_eq!(
            FieldValidation::from_param(Some("Strict")).unwrap(),
            FieldValidation::Strict
        );
        assert_eq!(
            FieldValidation::from_param(Some("strict"))
                .unwrap_err()
                .code,
            400
        );
    }
}
