//! Object metadata validation the real server applies to every kind: label keys and values,
//! annotation keys and total size, finalizer names, owner references. An operator that writes a label value
//! longer than 63 characters, or a finalizer that is not domain-qualified, fails on a real
//! cluster; it fails here too.

use crate::apiserver::error::Cause;
use crate::apiserver::store::meta::invalid_name;
use serde_json::Value;

/// The real server's cap on the total size of annotations (keys plus values).
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

const QUALIFIED_NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const SUBDOMAIN_RULE: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, any length.
fn matches_name_part(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !s.is_empty() && s.chars().all(ok) && ends(s.chars().next()) && ends(s.chars().last())
}

fn max_len(n: usize) -> String {
    format!("must be no more than {n} bytes")
}

/// The problems the real server finds with a qualified name (`prefix/name` or `name`), in its
/// words (apimachinery's `IsQualifiedName`).
fn qualified_name_problems(key: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > 253 {
                    problems.push(format!("prefix part {}", max_len(253)));
                }
                if invalid_name(prefix, false).is_some() {
                    problems.push(format!("prefix part {SUBDOMAIN_RULE}"));
                }
            }
            name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        problems.push(format!("name part {}", max_len(63)));
    }
    if !matches_name_part(name) {
        problems.push(format!("name part {QUALIFIED_NAME_RULE}"));
    }
    problems
}

fn label_value_problems(v: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if v.len() > 63 {
        problems.push(max_len(63));
    }
    if !v.is_empty() && !matches_name_part(v) {
        problems.push(LABEL_VALUE_RULE.to_string());
    }
    problems
}

fn invalid_value(field: &str, value: &str, problem: &str) -> Cause {
    Cause::invalid(field, format!("Invalid value: {value:?}: {problem}"))
}

/// Validates `metadata` of an object about to be stored; returns the causes, empty when valid.
/// `builtin`: the object is of a built-in kind, whose finalizers must be standard or
/// domain-qualified (custom objects only get a warning for that on a real server).
pub fn metadata_causes(obj: &Value, builtin: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = obj.get("metadata");
    let map = |k: &str| meta.and_then(|m| m.get(k));
    match map("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (k, v) in labels {
                for p in qualified_name_problems(k) {
                    causes.push(invalid_value("metadata.labels", k, &p));
                }
                match v.as_str() {
                    Some(s) => {
                        for p in label_value_problems(s) {
                            causes.push(invalid_value("metadata.labels", s, &p));
                        }
                    }
                    None => causes.push(Cause::invalid(
                        "metadata.labels",
                        "Invalid value: label values must be strings",
                    )),
                }
            }
        }
        Some(_) => causes.push(Cause::invalid(
            "metadata.labels",
            "Invalid value: must be a map of strings",
        )),
    }
    match map("annotations") {
        None | Some(Value::Null) => {}
        Some(Value::Object(annotations)) => {
            let mut total = 0;
            for (k, v) in annotations {
                for p in qualified_name_problems(&k.to_lowercase()) {
                    causes.push(invalid_value("metadata.annotations", k, &p));
                }
                total += k.len() + v.as_str().map_or(0, str::len);
            }
            if total > MAX_ANNOTATIONS_BYTES {
                causes.push(Cause {
                    reason: "FieldValueTooLong",
                    field: "metadata.annotations".into(),
                    message: format!("Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes"),
                });
            }
        }
        Some(_) => causes.push(Cause::invalid(
            "metadata.annotations",
            "Invalid value: must be a map of strings",
        )),
    }
    let refs = map("ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for r in &refs {
        let empty = |k: &str| r.get(k).and_then(Value::as_str).is_none_or(str::is_empty);
        let version = r
            .get("apiVersion")
            .and_then(Value::as_str)
            .map(|v| v.rsplit('/').next().unwrap_or(""))
            .unwrap_or("");
        if version.is_empty() {
            causes.push(invalid_value(
                "metadata.ownerReferences.apiVersion",
                r.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
                "version must not be empty",
            ));
        }
        for k in ["kind", "name", "uid"] {
            if empty(k) {
                causes.push(invalid_value(
                    &format!("metadata.ownerReferences.{k}"),
                    "",
                    "must not be empty",
                ));
            }
        }
    }
    let controllers: Vec<String> = refs
        .iter()
        .filter(|r| r.get("controller") == Some(&Value::Bool(true)))
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
            format!("{}/{}", s("kind"), s("name"))
        })
        .collect();
    if controllers.len() > 1 {
        causes.push(Cause::invalid(
            "metadata.ownerReferences",
            format!(
                "Invalid value: only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
    let finalizers: Vec<&str> = map("finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| f.as_str().unwrap_or(""))
        .collect();
    for name in &finalizers {
        for p in qualified_name_problems(name) {
            causes.push(invalid_value("metadata.finalizers", name, &p));
        }
    }
    for (i, name) in finalizers.iter().enumerate() {
        if builtin && !STANDARD_FINALIZERS.contains(name) && !name.contains('/') {
            causes.push(invalid_value(
                &format!("metadata.finalizers[{i}]"),
                name,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Vec<String> {
        metadata_causes(&v, true)
            .into_iter()
            .map(|c| c.field)
            .collect()
    }

    #[test]
    fn valid_metadata_has_no_causes() {
        let ok = json!({"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "patchbay", "patchbay.dev/token": "build", "empty": ""},
            "annotations": {"patchbay.dev/connection": "ci/acme-github"},
            "finalizers": ["patchbay.dev/revoke", "kubernetes"]
        }});
        assert!(metadata_causes(&ok, true).is_empty());
    }

    #[test]
    fn a_label_value_over_63_characters_or_with_a_slash_is_invalid() {
        let long = "a".repeat(64);
        let causes = metadata_causes(&json!({"metadata": {"labels": {"k": long}}}), true);
        assert_eq!(
            (causes[0].field.as_str(), causes[0].message.as_str()),
            (
                "metadata.labels",
                format!("Invalid value: \"{long}\": must be no more than 63 bytes").as_str()
            )
        );
        assert_eq!(
            fields(json!({"metadata": {"labels": {"k": "ns/name"}}})),
            vec!["metadata.labels"]
        );
        assert_eq!(
            fields(json!({"metadata": {"labels": {"Bad Key": "v"}}})),
            vec!["metadata.labels"]
        );
    }

    #[test]
    fn owner_references_need_their_identity_and_at_most_one_controller() {
        let r = json!({"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u", "controller": true});
        assert!(metadata_causes(&json!({"metadata": {"ownerReferences": [r]}}), true).is_empty());
        assert_eq!(
            fields(json!({"metadata": {"ownerReferences": [{"name": "x"}]}})),
            vec![
                "metadata.ownerReferences.apiVersion",
                "metadata.ownerReferences.kind",
                "metadata.ownerReferences.uid"
            ]
        );
        assert_eq!(
            fields(json!({"metadata": {"ownerReferences": [r, r]}})),
            vec!["metadata.ownerReferences"]
        );
    }

    #[test]
    fn a_built_in_objects_finalizer_must_be_domain_qualified_a_custom_objects_need_not() {
        let plain = json!({"metadata": {"finalizers": ["cleanup"]}});
        let causes = metadata_causes(&plain, true);
        assert_eq!(causes[0].reason, "FieldValueInvalid");
        assert_eq!(causes[0].field, "metadata.finalizers[0]");
        assert!(metadata_causes(&plain, false).is_empty());
        let bad = json!({"metadata": {"finalizers": ["a/B_"]}});
        assert_eq!(fields(bad), vec!["metadata.finalizers"]);
    }

    #[test]
    fn annotations_are_capped_at_256_kib_in_total() {
        let big = "x".repeat(MAX_ANNOTATIONS_BYTES);
        let causes = metadata_causes(
            &json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": big}}}),
            true,
        );
        assert_eq!(causes[0].reason, "FieldValueTooLong");
    }
}
