//! What the Kubernetes API server does to a custom object before it stores it, emulated
//! against one CRD version's `openAPIV3Schema` (a `serde_json::Value`).
//!
//! [`admit`] runs the apiextensions-apiserver pipeline in its order: [`prune`] unknown fields,
//! [`apply_defaults`], [`validate_schema`] (kube-openapi's structural validation) and
//! [`validate_cel`] (`x-kubernetes-validations` through kube-rs's `kube_cel::Validator`).
//! Failures are [`FieldError`]s worded and shaped like the apiserver's `field.Error`s, and
//! [`invalid_status`] wraps them in the 422 `Status` a client receives, so the operator's unit
//! tests can assert the exact message a user would see, and the API emulator can answer with it.
//!
//! Emulated faithfully: pruning (root and `x-kubernetes-embedded-resource` keep
//! `apiVersion`/`kind`/`metadata`, `x-kubernetes-preserve-unknown-fields`,
//! `additionalProperties`), dropping non-nullable `null`s without defaults, structural
//! defaulting, type checks (`nullable`, `x-kubernetes-int-or-string`), `required`, `enum`,
//! `pattern` (Rust `regex`, which shares RE2's syntax closely), numeric bounds, character
//! counted string lengths, item and property counts, `uniqueItems`, list-type `set`/`map`
//! duplicates, `allOf`/`anyOf`/`oneOf`/`not`, and CEL rules with `message`,
//! `messageExpression`, `fieldPath`, `reason` and transition rules (`oldSelf`).
//!
//! Not emulated: `metadata` validation (name format, pruning to `ObjectMeta`), the
//! requirements on `apiVersion`/`kind` inside embedded resources, formats other than
//! `date-time`, `date`, `uuid`, `ipv4` and `ipv6` (the rest pass), CEL cost budgets,
//! validation ratcheting on update, list correlation for `oldSelf` (kube-cel pairs list items
//! by index where the apiserver pairs map lists by key), and the apiserver's habit of still
//! running CEL on subtrees that passed schema validation when others failed: [`admit`] runs
//! CEL only when schema validation found nothing. CEL functions kube-cel 0.8 cannot evaluate
//! (`cel.bind`, `type()`, optional field syntax `.?`) make the rule fail closed. Whatever the
//! input, nothing here panics: schema pieces of the wrong shape are skipped.
mod cel;
mod defaults;
mod errors;
mod gofmt;
mod prune;
mod scalars;
mod schema;
mod structural;

use serde_json::Value;

pub use cel::validate_cel;
pub use defaults::apply_defaults;
pub use errors::{FieldError, FieldErrorKind, invalid_status};
pub use prune::prune;
pub use structural::validate_schema;

/// Admits `obj` as the apiserver would on create (`old` is `None`) or update (`old` is the
/// stored object): prunes and defaults `obj` in place, then validates it against the schema
/// and, only if that passed, against its CEL rules. Returns every error of the first failing
/// stage.
pub fn admit(schema: &Value, obj: &mut Value, old: Option<&Value>) -> Result<(), Vec<FieldError>> {
    prune(schema, obj);
    apply_defaults(schema, obj);
    let errors = validate_schema(schema, obj);
    if !errors.is_empty() {
        return Err(errors);
    }
    let errors = validate_cel(schema, obj, old);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A miniature VcsAuthToken schema.
    fn token_schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["connection"],
                "x-kubernetes-validations": [{"rule": "has(self.github) || has(self.aws)",
                    "message": "one of github or aws must be set"}],
                "properties": {
                    "connection": {"type": "string", "minLength": 1,
                        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "connection is immutable"}]},
                    "renewBefore": {"type": "string", "default": "20m"},
                    "github": {"type": "object", "required": ["repositories"], "properties": {
                        "repositories": {"type": "array", "minItems": 1, "maxItems": 500,
                            "x-kubernetes-list-type": "set", "items": {"type": "string", "maxLength": 100}}}},
                    "aws": {"type": "object", "properties": {
                        "durationSeconds": {"type": "integer", "minimum": 900, "maximum": 43200}}}}}}})
    }

    fn token(spec: Value) -> Value {
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "build", "namespace": "team-a"}, "spec": spec})
    }

    #[test]
    fn a_valid_object_is_pruned_and_defaulted_in_place() {
        let mut obj =
            token(json!({"connection": "acme", "github": {"repositories": ["app"]}, "typo": 1}));
        assert_eq!(admit(&token_schema(), &mut obj, None), Ok(()));
        assert_eq!(obj["spec"]["renewBefore"], "20m");
        assert!(obj["spec"].get("typo").is_none());
        assert_eq!(obj["metadata"]["name"], "build");
    }

    #[test]
    fn schema_errors_stop_the_pipeline_before_cel() {
        let mut obj = token(json!({"aws": {"durationSeconds": 100}}));
        let errors = admit(&token_schema(), &mut obj, None).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "spec.connection: Required value",
                "spec.aws.durationSeconds: Invalid value: 100: spec.aws.durationSeconds in body should be greater than or equal to 900",
            ]
        );
    }

    #[test]
    fn cel_errors_are_reported_once_the_schema_passes() {
        let mut obj = token(json!({"connection": "acme"}));
        let errors = admit(&token_schema(), &mut obj, None).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            r#"spec: Invalid value: "object": one of github or aws must be set"#
        );
    }

    #[test]
    fn an_update_is_checked_against_the_old_object() {
        let schema = token_schema();
        let mut old = token(json!({"connection": "acme", "aws": {}}));
        assert_eq!(admit(&schema, &mut old, None), Ok(()));
        let mut new = token(json!({"connection": "other", "aws": {}}));
        let errors = admit(&schema, &mut new, Some(&old)).unwrap_err();
        assert_eq!(errors[0].field, "spec.connection");
        assert_eq!(errors[0].message, "connection is immutable");
    }

    #[test]
    fn the_rejection_becomes_the_apiservers_status() {
        let mut obj = token(json!({"connection": "acme", "github": {"repositories": ["a", "a"]}}));
        let errors = admit(&token_schema(), &mut obj, None).unwrap_err();
        let status = invalid_status("VcsAuthToken", "patchbay.dev", "build", &errors);
        assert_eq!(
            status["message"],
            r#"VcsAuthToken.patchbay.dev "build" is invalid: spec.github.repositories[1]: Duplicate value: "a""#
        );
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueDuplicate"
        );
    }

    #[test]
    fn too_many_items_reads_like_the_apiserver() {
        let repositories: Vec<String> = (0..501).map(|i| format!("r{i}")).collect();
        let mut obj =
            token(json!({"connection": "acme", "github": {"repositories": repositories}}));
        let errors = admit(&token_schema(), &mut obj, None).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "spec.github.repositories: Too many: 501: must have at most 500 items"
        );
    }

    #[test]
    fn arbitrary_json_never_panics() {
        let schema = token_schema();
        for mut obj in [
            json!(null),
            json!(3),
            json!("x"),
            json!([1, {"spec": 2}]),
            json!({"spec": [null]}),
        ] {
            let _ = admit(&schema, &mut obj, Some(&json!("old")));
        }
        let mut obj = token(json!({}));
        let _ = admit(&json!({"properties": {"spec": 1}}), &mut obj, None);
    }
}
