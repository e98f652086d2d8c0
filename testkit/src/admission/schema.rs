//! Read-only accessors over an `openAPIV3Schema` node, and field-path helpers.
//!
//! Every accessor tolerates malformed schemas: a keyword of the wrong JSON type is treated as
//! absent, so a bad schema piece is skipped instead of causing a panic.

use serde_json::{Map, Value};

/// What `additionalProperties` allows on an object node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Additional<'a> {
    /// Absent or `false`: only declared `properties` are known.
    None,
    /// `true`: any value is allowed and nothing below it is known.
    Any,
    /// A schema every undeclared key's value must follow.
    Schema(&'a Value),
}

/// The `properties` map, when present.
pub(crate) fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The single `items` schema, when present.
pub(crate) fn items(schema: &Value) -> Option<&Value> {
    schema.get("items").filter(|s| s.is_object())
}

/// The `additionalProperties` setting.
pub(crate) fn additional(schema: &Value) -> Additional<'_> {
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) => Additional::Any,
        Some(s @ Value::Object(_)) => Additional::Schema(s),
        _ => Additional::None,
    }
}

/// A boolean extension such as `x-kubernetes-preserve-unknown-fields`; false when absent.
pub(crate) fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// The `type` keyword, when it is a string.
pub(crate) fn type_name(schema: &Value) -> Option<&str> {
    schema.get("type").and_then(Value::as_str)
}

/// The schema that describes the value stored under `key` of an object, if any.
pub(crate) fn child<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(s) = properties(schema).and_then(|p| p.get(key)) {
        return Some(s);
    }
    match additional(schema) {
        Additional::Schema(s) => Some(s),
        _ => None,
    }
}

/// `path.key`, or `key` at the root, as `field.Path.Child` prints it.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`, as `field.Path.Index` prints it.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The apiserver prints the root path (a nil `*field.Path`) as `<nil>`.
pub(crate) fn printed(path: &str) -> String {
    if path.is_empty() {
        "<nil>".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn additional_properties_true_false_and_schema_are_told_apart() {
        assert!(matches!(
            additional(&json!({"additionalProperties": true})),
            Additional::Any
        ));
        assert!(matches!(
            additional(&json!({"additionalProperties": false})),
            Additional::None
        ));
        assert!(matches!(
            additional(&json!({"additionalProperties": {"type": "string"}})),
            Additional::Schema(_)
        ));
    }

    #[test]
    fn a_keyword_of_the_wrong_type_is_treated_as_absent() {
        let s = json!({"properties": [1], "items": "x", "type": 3, "nullable": "yes"});
        assert!(properties(&s).is_none());
        assert!(items(&s).is_none());
        assert!(type_name(&s).is_none());
        assert!(!flag(&s, "nullable"));
    }

    #[test]
    fn paths_print_like_field_path() {
        assert_eq!(join("", "spec"), "spec");
        assert_eq!(
            index(&join("spec", "repositories"), 3),
            "spec.repositories[3]"
        );
        assert_eq!(printed(""), "<nil>");
    }
}
