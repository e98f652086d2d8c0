//! Patch formats: JSON patch (RFC 6902, including `test`), JSON merge patch (RFC 7386),
//! strategic merge patch for the built-in kinds, and the body of server-side apply.

use serde_json::{Map, Value};

/// The patch type, from the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchKind {
    /// Parses a Content-Type header (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchError {
    /// The body does not parse (400).
    Malformed(String),
    /// The patch parses but does not apply, e.g. a failed `test` (422).
    Failed(String),
}

/// Parses a JSON or YAML body (server-side apply accepts both).
pub fn parse_json_or_yaml(body: &[u8]) -> Result<Value, PatchError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| PatchError::Malformed(format!("body is not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| PatchError::Malformed(format!("error decoding YAML: {e}")))
}

/// Applies a JSON, merge or strategic merge patch to `doc` (a copy the caller gives up).
pub fn apply_patch(kind: PatchKind, mut doc: Value, body: &[u8]) -> Result<Value, PatchError> {
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| PatchError::Malformed(format!("error decoding JSON patch: {e}")))?;
            for op in ops.0 {
                // Like the real server (evanphx/json-patch), testing a missing path for null
                // passes: kube's finalizer helper relies on it for objects without finalizers.
                if let json_patch::PatchOperation::Test(t) = &op
                    && t.value.is_null()
                    && doc.pointer(t.path.as_str()).is_none()
                {
                    continue;
                }
                json_patch::patch(&mut doc, std::slice::from_ref(&op))
                    .map_err(|e| PatchError::Failed(e.to_string()))?;
            }
        }
        PatchKind::Merge => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| PatchError::Malformed(format!("error decoding merge patch: {e}")))?;
            json_patch::merge(&mut doc, &p);
        }
        PatchKind::Strategic => {
            let p: Value = serde_json::from_slice(body).map_err(|e| {
                PatchError::Malformed(format!("error decoding strategic merge patch: {e}"))
            })?;
            if !p.is_object() {
                return Err(PatchError::Malformed(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic_merge(&mut doc, &p, "");
        }
        PatchKind::Apply => {
            return Err(PatchError::Malformed(
                "server-side apply is not a patch".into(),
            ));
        }
    }
    Ok(doc)
}

/// List fields of the built-in kinds that merge by a key instead of being replaced.
fn merge_key(path: &str) -> Option<&'static str> {
    match path {
        "metadata.ownerReferences" => Some("uid"),
        "secrets" | "imagePullSecrets" => Some("name"),
        _ => None,
    }
}

/// Lists of scalars that merge as sets.
fn is_primitive_merge_list(path: &str) -> bool {
    path == "metadata.finalizers"
}

fn is_delete_directive(v: &Value) -> bool {
    v.get("$patch").and_then(Value::as_str) == Some("delete")
}

fn strategic_merge(target: &mut Value, patch: &Value, path: &str) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = p.clone();
        replaced.remove("$patch");
        *target = Value::Object(replaced);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        t.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)) || p.contains_key(k));
    }
    for (k, pv) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(gone)) = (t.get_mut(field), pv.as_array()) {
                items.retain(|i| !gone.contains(i));
            }
            continue;
        }
        let child_path = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if pv.is_null() || is_delete_directive(pv) {
            t.remove(k);
            continue;
        }
        match (pv, t.get_mut(k)) {
            (Value::Array(items), Some(Value::Array(existing))) => {
                if let Some(key) = merge_key(&child_path) {
                    merge_keyed_list(existing, items, key);
                } else if is_primitive_merge_list(&child_path) {
                    for i in items {
                        if !existing.contains(i) {
                            existing.push(i.clone());
                        }
                    }
                } else {
                    *existing = items.clone();
                }
            }
            (Value::Object(_), Some(existing)) => strategic_merge(existing, pv, &child_path),
            (_, _) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, pv, &child_path);
                t.insert(k.clone(), fresh);
            }
        }
    }
}

fn merge_keyed_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let k = item.get(key);
        let pos = existing.iter().position(|e| k.is_some() && e.get(key) == k);
        match (pos, is_delete_directive(item)) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut existing[i], item, ""),
            (None, false) => existing.push(item.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_json_patch_test_operation_that_fails_rejects_the_patch() {
        let cur = json!({"metadata": {"labels": {"a": "1"}}});
        let ok = br#"[{"op":"test","path":"/metadata/labels/a","value":"1"},{"op":"add","path":"/metadata/labels/b","value":"2"}]"#;
        assert_eq!(
            apply_patch(PatchKind::Json, cur.clone(), ok).unwrap()["metadata"]["labels"]["b"],
            "2"
        );
        let bad = br#"[{"op":"test","path":"/metadata/labels/a","value":"9"}]"#;
        assert!(matches!(
            apply_patch(PatchKind::Json, cur.clone(), bad),
            Err(PatchError::Failed(_))
        ));
        assert!(matches!(
            apply_patch(PatchKind::Json, cur.clone(), b"{"),
            Err(PatchError::Malformed(_))
        ));
        let missing_is_null = br#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["f"]}]"#;
        assert_eq!(
            apply_patch(PatchKind::Json, cur.clone(), missing_is_null).unwrap()["metadata"]["finalizers"]
                [0],
            "f"
        );
    }

    #[test]
    fn a_merge_patch_null_removes_a_field() {
        let cur = json!({"data": {"a": "1", "b": "2"}});
        let out = apply_patch(
            PatchKind::Merge,
            cur.clone(),
            br#"{"data":{"a":null,"c":"3"}}"#,
        )
        .unwrap();
        assert_eq!(out["data"], json!({"b": "2", "c": "3"}));
    }

    #[test]
    fn a_strategic_merge_patch_merges_owner_references_by_uid_and_finalizers_as_a_set() {
        let cur = json!({"metadata": {"finalizers": ["a"], "ownerReferences": [{"uid": "1", "name": "x"}]}});
        let patch = br#"{"metadata":{"finalizers":["b"],"ownerReferences":[{"uid":"2","name":"y"},{"uid":"1","$patch":"delete"}]}}"#;
        let out = apply_patch(PatchKind::Strategic, cur.clone(), patch).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "2", "name": "y"}])
        );
    }

    #[test]
    fn a_strategic_merge_patch_understands_kubectl_directives() {
        let cur = json!({"metadata": {"finalizers": ["a", "b"]}, "data": {"x": "1"}});
        let patch = br#"{"$setElementOrder/data":[{"x":1}],"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]},"data":{"$patch":"replace","y":"2"}}"#;
        let out = apply_patch(PatchKind::Strategic, cur.clone(), patch).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(out["data"], json!({"y": "2"}));
    }

    #[test]
    fn apply_bodies_may_be_yaml_or_json() {
        assert_eq!(
            parse_json_or_yaml(b"a: 1\nb: [x]\n").unwrap(),
            json!({"a": 1, "b": ["x"]})
        );
        assert_eq!(parse_json_or_yaml(br#"{"a":1}"#).unwrap(), json!({"a": 1}));
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchKind::Merge)
        );
    }
}
