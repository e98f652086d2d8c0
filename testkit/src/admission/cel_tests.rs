use serde_json::{Value, json};

use super::validate_cel;
use crate::admission::FieldErrorKind;

fn messages(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<String> {
    validate_cel(schema, obj, old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A root schema whose `spec` is `spec` and whose `spec.v` (a string) carries `rule`.
fn string_rule(rule: &str) -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "v": {"type": "string", "x-kubernetes-validations": [{"rule": rule}]}}}}})
}

fn passes(rule: &str, v: Value) -> bool {
    messages(&string_rule(rule), &json!({"spec": {"v": v}}), None).is_empty()
}

fn providers() -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{
            "rule": "(has(self.githubApp) ? 1 : 0) + (has(self.aws) ? 1 : 0) == 1",
            "message": "exactly one provider block must be set"}],
        "properties": {"githubApp": {"type": "object"}, "aws": {"type": "object"}}}}})
}

#[test]
fn a_rule_with_a_message_reports_it_with_the_node_type_as_value() {
    let errs = validate_cel(&providers(), &json!({"spec": {}}), None);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].kind, FieldErrorKind::Invalid);
    assert_eq!(
        errs[0].to_string(),
        r#"spec: Invalid value: "object": exactly one provider block must be set"#
    );
}

#[test]
fn the_has_based_exactly_one_of_rule_accepts_one_and_rejects_two() {
    assert!(messages(&providers(), &json!({"spec": {"githubApp": {}}}), None).is_empty());
    assert_eq!(
        messages(
            &providers(),
            &json!({"spec": {"githubApp": {}, "aws": {}}}),
            None
        )
        .len(),
        1
    );
}

#[test]
fn a_rule_without_a_message_reports_failed_rule() {
    assert_eq!(
        messages(
            &string_rule("  self.matches('^https?://')  "),
            &json!({"spec": {"v": "ftp://x"}}),
            None
        ),
        [r#"spec.v: Invalid value: "string": failed rule: self.matches('^https?://')"#]
    );
}

#[test]
fn a_rule_with_a_field_path_reports_that_field() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "must not exceed max",
            "fieldPath": ".min"}],
        "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}}});
    let errs = validate_cel(&s, &json!({"spec": {"min": 5, "max": 1}}), None);
    assert_eq!(errs[0].field, "spec.min");
    assert_eq!(
        errs[0].to_string(),
        r#"spec.min: Invalid value: "object": must not exceed max"#
    );
}

#[test]
fn a_rule_reason_picks_the_error_kind() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [
            {"rule": "!has(self.a)", "message": "a is reserved", "reason": "FieldValueForbidden"},
            {"rule": "has(self.b)", "message": "b is needed", "reason": "FieldValueRequired"}],
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}}});
    let errs = validate_cel(&s, &json!({"spec": {"a": "x"}}), None);
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "spec: Forbidden: a is reserved",
            "spec: Required value: b is needed"
        ]
    );
    assert_eq!(errs[0].kind.reason(), "FieldValueForbidden");
}

#[test]
fn a_root_rule_reports_the_nil_path() {
    let s = json!({"type": "object", "x-kubernetes-validations": [{"rule": "has(self.spec)"}],
        "properties": {"spec": {"type": "object"}}});
    assert_eq!(
        messages(&s, &json!({}), None),
        [r#"<nil>: Invalid value: "object": failed rule: has(self.spec)"#]
    );
}

#[test]
fn is_url_accepts_urls_and_rejects_other_strings() {
    assert!(passes(
        "isURL(self)",
        json!("https://ghe.example.com/api/v3")
    ));
    assert!(!passes("isURL(self)", json!("not a url")));
}

#[test]
fn all_with_matches_checks_every_list_item() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "repositories": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [{
            "rule": "self.all(x, x.matches('^[A-Za-z0-9_.-]+$'))", "message": "invalid repository name"}]}}}}});
    assert!(
        messages(
            &s,
            &json!({"spec": {"repositories": ["app", "lib.rs"]}}),
            None
        )
        .is_empty()
    );
    assert_eq!(
        messages(&s, &json!({"spec": {"repositories": ["app", "a b"]}}), None),
        [r#"spec.repositories: Invalid value: "array": invalid repository name"#]
    );
}

#[test]
fn rules_on_list_items_report_the_item_index() {
    let s = json!({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "string",
        "x-kubernetes-validations": [{"rule": "self != 'bad'", "message": "bad item"}]}}}});
    let errs = validate_cel(&s, &json!({"l": ["ok", "bad"]}), None);
    assert_eq!(
        errs[0].to_string(),
        r#"l[1]: Invalid value: "string": bad item"#
    );
}

#[test]
fn a_transition_rule_uses_old_self_only_when_there_is_an_old_object() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "connection": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "connection is immutable"}]}}}}});
    let new = json!({"spec": {"connection": "b"}});
    assert!(messages(&s, &new, None).is_empty());
    assert!(messages(&s, &new, Some(&json!({"spec": {"connection": "b"}}))).is_empty());
    assert_eq!(
        messages(&s, &new, Some(&json!({"spec": {"connection": "a"}}))),
        [r#"spec.connection: Invalid value: "string": connection is immutable"#]
    );
}

#[test]
fn the_functions_the_operator_uses_are_supported() {
    let url = json!("https://ghe.example.com/api/v3");
    for rule in [
        "self.matches('^https?://')",
        "size(self) == 30",
        "isURL(self)",
        "url(self).getScheme() == 'https'",
        "url(self).getHost() == 'ghe.example.com'",
        "url(self).getEscapedPath() == '/api/v3'",
        "self.startsWith('https://') && self.endsWith('/v3')",
        "self.contains('example') && self.lowerAscii() == self",
        "self.split('/').size() == 5",
        "[self].all(x, x.matches('^https'))",
        "[self, 'x'].exists(x, x == 'x')",
        "[self, 'x'].exists_one(x, x == 'x')",
        "[self].filter(x, x.size() > 3).size() == 1",
        "[self].map(x, size(x)) == [30]",
        "self in [self, 'x']",
        "int('3') == 3 && string(3) == '3'",
        "'%s!'.format([self]).endsWith('!')",
        "quantity('1Gi').isGreaterThan(quantity('1Mi'))",
        "isIP('10.0.0.1')",
        "timestamp('2024-01-01T00:00:00Z') > timestamp('2020-01-01T00:00:00Z')",
        "optional.of(1).hasValue()",
    ] {
        assert!(passes(rule, url.clone()), "{rule} should pass");
    }
    let has = json!({"type": "object", "x-kubernetes-validations": [{"rule": "has(self.a) && !has(self.b)"}],
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}}});
    assert!(messages(&has, &json!({"a": "x"}), None).is_empty());
}

#[test]
fn duration_parses_go_durations_and_bounds_them() {
    let rule = "duration(self) >= duration('5m') && duration(self) <= duration('24h')";
    assert!(passes(rule, json!("20m")));
    assert!(passes(rule, json!("1h30m")));
    assert!(!passes(rule, json!("4m")));
    let errs = validate_cel(&string_rule(rule), &json!({"spec": {"v": "1d"}}), None);
    assert_eq!(errs[0].kind, FieldErrorKind::Invalid);
    assert!(
        errs[0].message.contains("evaluating rule: duration(self)"),
        "{}",
        errs[0].message
    );
}

#[test]
fn unsupported_cel_features_fail_closed() {
    // `cel.bind`, `type()` and optional field syntax `.?` are valid apiserver CEL that
    // kube-cel 0.8 cannot evaluate: the object is rejected rather than silently admitted.
    assert!(!passes("cel.bind(x, 1, x == 1)", json!("x")));
    assert!(!passes("type(self) == string", json!("x")));
    let errs = validate_cel(
        &string_rule("self.?x.orValue('') == ''"),
        &json!({"spec": {"v": "x"}}),
        None,
    );
    assert_eq!(errs[0].kind, FieldErrorKind::Internal);
}

#[test]
fn a_runtime_error_names_the_rule() {
    let errs = validate_cel(
        &string_rule("url(self).getScheme() == 'https'"),
        &json!({"spec": {"v": "nope"}}),
        None,
    );
    assert_eq!(errs[0].field, "spec.v");
    assert!(
        errs[0]
            .message
            .ends_with("evaluating rule: url(self).getScheme() == 'https'"),
        "{}",
        errs[0].message
    );
}

#[test]
fn a_message_expression_is_used_when_given() {
    let s = json!({"type": "object", "properties": {"n": {"type": "integer", "x-kubernetes-validations": [
        {"rule": "self < 10", "messageExpression": "'got ' + string(self)"}]}}});
    assert_eq!(
        messages(&s, &json!({"n": 12}), None),
        [r#"n: Invalid value: "integer": got 12"#]
    );
}

#[test]
fn objects_without_rules_and_odd_schemas_pass() {
    assert!(messages(&json!({"type": "object"}), &json!({"a": 1}), None).is_empty());
    assert!(messages(&json!("nonsense"), &json!([1]), None).is_empty());
    let bad = json!({"type": "object", "x-kubernetes-validations": "not a list"});
    let _ = messages(&bad, &json!({}), None);
}
