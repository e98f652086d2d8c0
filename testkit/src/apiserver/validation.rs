//! Object metadata validation the real server applies to every kind: label keys and values,
//! annotation keys and total size, finalizer names, owner references. An operator that writes a label value
//! longer than 63 characters, or a finalizer that is not domain-qualified, fails on a real
//! cluster; it fails here too.

use super::error::Cause;
use serde_json::Value;

/// The real server's cap on the total size of annotations (keys plus values).
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

fn is_name_part(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(ok)
        && ends(s.chars().next())
        && ends(s.chars().last())
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && super::meta::invalid_name(s, false).is_none()
}

/// Problem with a qualified name (`prefix/name` or `name`), if any.
fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix.filter(|p| !is_dns_subdomain(p)) {
        return Some(format!(
            "Invalid value: {key:?}: prefix part {p:?} must be a lowercase RFC 1123 subdomain"
        ));
    }
    if !is_name_part(name) {
        return Some(format!(
            "Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc'), with at most 63 characters"
        ));
    }
    None
}

fn label_value_problem(v: &str) -> Option<String> {
    if v.is_empty() || is_name_part(v) {
        return None;
    }
    Some(format!(
        "Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with at most 63 characters"
    ))
}

/// Validates `metadata` of an object about to be stored; returns the causes, empty when valid.
pub fn metadata_causes(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = obj.get("metadata");
    let map = |k: &str| meta.and_then(|m| m.get(k));
    match map("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (k, v) in labels {
                if let Some(p) = qualified_name_problem(k) {
                    causes.push(Cause::invalid("metadata.labels", p));
                }
                match v.as_str() {
                    Some(s) => causes.extend(
                        label_value_problem(s)
                            .map(|p| Cause::invalid(format!("metadata.labels.{k}"), p)),
                    ),
                    None => causes.push(Cause::invalid(
                        format!("metadata.labels.{k}"),
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
                if let Some(p) = qualified_name_problem(k) {
                    causes.push(Cause::invalid("metadata.annotations", p));
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
    for (i, r) in refs.iter().enumerate() {
        for k in ["apiVersion", "kind", "name", "uid"] {
            if r.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                let field = format!("metadata.ownerReferences[{i}].{k}");
                causes.push(Cause::invalid(
                    field,
                    format!("Invalid value: \"\": {k} must not be empty"),
                ));
            }
        }
    }
    let controllers = refs
        .iter()
        .filter(|r| r.get("controller") == Some(&Value::Bool(true)))
        .count();
    if controllers > 1 {
        causes.push(Cause::invalid(
            "metadata.ownerReferences",
            "Invalid value: only one reference can have Controller set to true",
        ));
    }
    for (i, f) in map("finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = f.as_str().unwrap_or("");
        if STANDARD_FINALIZERS.contains(&name) {
            continue;
        }
        let field = format!("metadata.finalizers[{i}]");
        if !name.contains('/') {
            causes.push(Cause {
                reason: "FieldValueForbidden",
                field,
                message: format!("Forbidden: name is neither a standard finalizer name nor is it fully qualified: {name:?}"),
            });
        } else if let Some(p) = qualified_name_problem(name) {
            causes.push(Cause::invalid(field, p));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Vec<String> {
        metadata_causes(&v).into_iter().map(|c| c.field).collect()
    }

    #[test]
    fn valid_metadata_has_no_causes() {
        let ok = json!({"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "patchbay", "patchbay.dev/token": "build", "empty": ""},
            "annotations": {"patchbay.dev/connection": "ci/acme-github"},
            "finalizers": ["patchbay.dev/revoke", "kubernetes"]
        }});
        assert!(metadata_causes(&ok).is_empty());
    }

    #[test]
    fn a_label_value_over_63_characters_or_with_a_slash_is_invalid() {
        let long = "a".repeat(64);
        assert_eq!(
            fields(json!({"metadata": {"labels": {"k": long}}})),
            vec!["metadata.labels.k"]
        );
        assert_eq!(
            fields(json!({"metadata": {"labels": {"k": "ns/name"}}})),
            vec!["metadata.labels.k"]
        );
        assert_eq!(
            fields(json!({"metadata": {"labels": {"Bad Key": "v"}}})),
            vec!["metadata.labels"]
        );
    }

    #[test]
    fn owner_references_need_their_identity_and_at_most_one_controller() {
        let r = json!({"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u", "controller": true});
        assert!(metadata_causes(&json!({"metadata": {"ownerReferences": [r]}})).is_empty());
        assert_eq!(
            fields(json!({"metadata": {"ownerReferences": [{"name": "x"}]}})).len(),
            3
        );
        assert_eq!(
            fields(json!({"metadata": {"ownerReferences": [r, r]}})),
            vec!["metadata.ownerReferences"]
        );
    }

    #[test]
    fn a_finalizer_must_be_domain_qualified() {
        let causes = metadata_causes(&json!({"metadata": {"finalizers": ["cleanup"]}}));
        assert_eq!(causes[0].reason, "FieldValueForbidden");
        assert_eq!(causes[0].field, "metadata.finalizers[0]");
    }

    #[test]
    fn annotations_are_capped_at_256_kib_in_total() {
        let big = "x".repeat(MAX_ANNOTATIONS_BYTES);
        let causes = metadata_causes(
            &json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": big}}}),
        );
        assert_eq!(causes[0].reason, "FieldValueTooLong");
    }
}
