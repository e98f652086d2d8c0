use serde_json::{Value, json};

use super::validate_schema;
use crate::admission::FieldErrorKind;

fn messages(schema: &Value, obj: &Value) -> Vec<String> {
    validate_schema(schema, obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn spec(props: Value) -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})
}

#[test]
fn a_valid_object_has_no_errors() {
    let s = spec(json!({"name": {"type": "string"}, "n": {"type": "integer"}}));
    assert!(messages(&s, &json!({"spec": {"name": "x", "n": 3}})).is_empty());
}

#[test]
fn a_missing_required_field_is_reported_with_its_path() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["githubApp"],
        "properties": {"githubApp": {"type": "object", "required": ["appId"], "properties": {"appId": {"type": "string"}}}}}}});
    assert_eq!(
        messages(&s, &json!({"spec": {}})),
        ["spec.githubApp: Required value"]
    );
    let errs = validate_schema(&s, &json!({"spec": {"githubApp": {}}}));
    assert_eq!(errs[0].field, "spec.githubApp.appId");
    assert_eq!(errs[0].kind, FieldErrorKind::Required);
}

#[test]
fn a_value_of_the_wrong_type_is_type_invalid() {
    let s = spec(json!({"n": {"type": "integer"}}));
    let errs = validate_schema(&s, &json!({"spec": {"n": "3"}}));
    assert_eq!(errs[0].kind, FieldErrorKind::TypeInvalid);
    assert_eq!(
        errs[0].to_string(),
        r#"spec.n: Invalid value: "string": spec.n in body must be of type integer: "string""#
    );
}

#[test]
fn integers_are_numbers_and_integral_floats_are_integers() {
    let s = spec(json!({"n": {"type": "integer"}, "f": {"type": "number"}}));
    assert!(messages(&s, &json!({"spec": {"n": 3.0, "f": 2}})).is_empty());
    assert_eq!(
        messages(&s, &json!({"spec": {"n": 3.5}})),
        [r#"spec.n: Invalid value: "number": spec.n in body must be of type integer: "number""#]
    );
}

#[test]
fn null_is_allowed_only_when_nullable() {
    let s = spec(json!({"a": {"type": "string", "nullable": true}, "b": {"type": "string"}}));
    assert!(messages(&s, &json!({"spec": {"a": null}})).is_empty());
    assert_eq!(
        messages(&s, &json!({"spec": {"b": null}})),
        [r#"spec.b: Invalid value: "null": spec.b in body must be of type string: "null""#]
    );
}

#[test]
fn int_or_string_accepts_both_and_nothing_else() {
    let s = spec(json!({"port": {"x-kubernetes-int-or-string": true}}));
    assert!(messages(&s, &json!({"spec": {"port": 80}})).is_empty());
    assert!(messages(&s, &json!({"spec": {"port": "http"}})).is_empty());
    assert_eq!(
        messages(&s, &json!({"spec": {"port": true}})),
        [
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        ]
    );
}

#[test]
fn enum_pattern_and_length_are_checked_inside_the_tree() {
    let s = spec(json!({
        "policy": {"type": "string", "enum": ["Delete", "Retain"]},
        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
    }));
    assert_eq!(
        messages(&s, &json!({"spec": {"policy": "Keep", "name": "ABCDEFG"}})),
        [
            "spec.name: Too long: may not be longer than 5",
            r#"spec.name: Invalid value: "ABCDEFG": spec.name in body should match '^[a-z]+$'"#,
            r#"spec.policy: Unsupported value: "Keep": supported values: "Delete", "Retain""#,
        ]
    );
}

#[test]
fn numeric_bounds_are_checked_inside_the_tree() {
    let s = spec(json!({"durationSeconds": {"type": "integer", "minimum": 900, "maximum": 43200}}));
    assert_eq!(
        messages(&s, &json!({"spec": {"durationSeconds": 100}})),
        [
            "spec.durationSeconds: Invalid value: 100: spec.durationSeconds in body should be greater than or equal to 900"
        ]
    );
}

#[test]
fn list_items_are_validated_at_their_index() {
    let s = spec(
        json!({"repositories": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}}}),
    );
    let errs = validate_schema(
        &s,
        &json!({"spec": {"repositories": ["a", "b", "c", "bad name"]}}),
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec.repositories[3]");
}

#[test]
fn item_counts_are_bounded() {
    let s = spec(
        json!({"r": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}}}),
    );
    assert_eq!(
        messages(&s, &json!({"spec": {"r": []}})),
        ["spec.r: Invalid value: 0: spec.r in body should have at least 1 items"]
    );
    let errs = validate_schema(&s, &json!({"spec": {"r": ["a", "b", "c"]}}));
    assert_eq!(
        errs[0].to_string(),
        "spec.r: Too many: 3: must have at most 2 items"
    );
    assert_eq!(errs[0].kind.reason(), "FieldValueTooMany");
}

#[test]
fn property_counts_are_bounded() {
    let s = spec(
        json!({"m": {"type": "object", "minProperties": 1, "maxProperties": 1,
        "additionalProperties": {"type": "string"}}}),
    );
    assert_eq!(
        messages(&s, &json!({"spec": {"m": {}}})),
        ["spec.m: Invalid value: 0: spec.m in body should have at least 1 properties"]
    );
    assert_eq!(
        messages(&s, &json!({"spec": {"m": {"a": "1", "b": "2"}}})),
        ["spec.m: Too many: 2: must have at most 1 items"]
    );
}

#[test]
fn additional_properties_values_follow_their_schema() {
    let s = spec(
        json!({"tags": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}}}),
    );
    assert_eq!(
        messages(
            &s,
            &json!({"spec": {"tags": {"ok": "1", "cost-center": 42}}})
        ),
        [
            r#"spec.tags.cost-center: Invalid value: "integer": spec.tags.cost-center in body must be of type string: "integer""#
        ]
    );
}

#[test]
fn unique_items_rejects_duplicates() {
    let s =
        spec(json!({"u": {"type": "array", "uniqueItems": true, "items": {"type": "integer"}}}));
    assert_eq!(
        messages(&s, &json!({"spec": {"u": [1, 2, 1]}})),
        [r#"spec.u: Invalid value: "": spec.u in body shouldn't contain duplicates"#]
    );
}

#[test]
fn a_set_list_reports_each_later_duplicate() {
    let s = spec(
        json!({"r": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}),
    );
    assert_eq!(
        messages(&s, &json!({"spec": {"r": ["a", "b", "a"]}})),
        [r#"spec.r[2]: Duplicate value: "a""#]
    );
}

#[test]
fn a_map_list_reports_duplicate_keys() {
    let s = spec(
        json!({"c": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
        "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}}}),
    );
    let obj = json!({"spec": {"c": [{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}]}});
    assert_eq!(
        messages(&s, &obj),
        [r#"spec.c[1]: Duplicate value: map[string]interface {}{"type":"Ready"}"#]
    );
}

#[test]
fn any_of_failing_reports_the_composite_on_the_root_and_the_best_branch() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}}});
    assert!(messages(&s, &json!({"spec": {"b": "x"}})).is_empty());
    assert_eq!(
        messages(&s, &json!({"spec": {}})),
        [
            r#"<nil>: Invalid value: "": "spec" must validate at least one schema (anyOf)"#,
            "spec.a: Required value"
        ]
    );
}

#[test]
fn one_of_requires_exactly_one_branch() {
    let s = spec(
        json!({"p": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}}),
    );
    assert!(messages(&s, &json!({"spec": {"p": {"a": "x"}}})).is_empty());
    assert_eq!(
        messages(&s, &json!({"spec": {"p": {"a": "x", "b": "y"}}})),
        [
            r#"<nil>: Invalid value: "": "spec.p" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        ]
    );
    assert_eq!(messages(&s, &json!({"spec": {"p": {}}})).len(), 2);
}

#[test]
fn all_of_and_not_are_value_validations() {
    let s = spec(
        json!({"n": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}], "not": {"enum": [3]}}}),
    );
    assert!(messages(&s, &json!({"spec": {"n": 2}})).is_empty());
    assert_eq!(
        messages(&s, &json!({"spec": {"n": 9}})),
        [
            "spec.n: Invalid value: 9: spec.n in body should be less than or equal to 5",
            r#"<nil>: Invalid value: "": "spec.n" must validate all the schemas (allOf)"#,
        ]
    );
    assert_eq!(
        messages(&s, &json!({"spec": {"n": 3}})),
        [r#"<nil>: Invalid value: "": "spec.n" must not validate the schema (not)"#]
    );
}

#[test]
fn a_format_is_checked_inside_the_tree() {
    let s = spec(json!({"at": {"type": "string", "format": "date-time"}}));
    assert!(messages(&s, &json!({"spec": {"at": "2025-01-01T00:00:00Z"}})).is_empty());
    assert_eq!(
        validate_schema(&s, &json!({"spec": {"at": "soon"}}))[0].kind,
        FieldErrorKind::TypeInvalid
    );
}

#[test]
fn malformed_schema_pieces_are_skipped_without_panicking() {
    let s = json!({"type": "object", "required": "spec", "properties": {"spec": "not a schema",
        "n": {"type": "integer", "minimum": "9", "maxItems": -1, "enum": "x", "anyOf": {"a": 1}},
        "l": {"type": "array", "items": [1], "x-kubernetes-list-type": "map"}}});
    assert!(messages(&s, &json!({"spec": {"x": 1}, "n": 3, "l": [1, 1]})).is_empty());
    assert!(messages(&json!(null), &json!({"a": 1})).is_empty());
    assert!(messages(&json!({"type": 7}), &json!("x")).is_empty());
}
