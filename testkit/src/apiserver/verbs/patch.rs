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

/// List fields of the built-in kinds that merge by a key instead of being replaced (their
/// `patchMergeKey`); `[]` stands for "each element of the list".
fn merge_key(path: &str) -> Option<&'static str> {
    let path = path
        .strip_prefix("spec.initContainers[].")
        .or_else(|| path.strip_prefix("spec.ephemeralContainers[]."))
        .map_or(path.to_string(), |rest| format!("spec.containers[].{rest}"));
    match path.as_str() {
        "metadata.ownerReferences" => Some("uid"),
        "secrets" | "imagePullSecrets" | "spec.imagePullSecrets" => Some("name"),
        "spec.containers" | "spec.initContainers" | "spec.ephemeralContainers" => Some("name"),
        "spec.volumes" | "spec.resourceClaims" | "spec.schedulingGates" => Some("name"),
        "spec.containers[].env" | "spec.containers[].resizePolicy" => Some("name"),
        "spec.containers[].ports" => Some("containerPort"),
        "spec.containers[].volumeMounts" => Some("mountPath"),
        "spec.containers[].volumeDevices" => Some("devicePath"),
        "spec.hostAliases" => Some("ip"),
        "spec.topologySpreadConstraints" => Some("topologyKey"),
        "status.conditions" => Some("type"),
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

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
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
    let before: Map<String, Value> = t.clone();
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
        let child_path = child(path, k);
        if pv.is_null() || is_delete_directive(pv) {
            t.remove(k);
            continue;
        }
        match (pv, t.get_mut(k)) {
            (Value::Array(items), Some(Value::Array(existing))) => {
                if let Some(key) = merge_key(&child_path) {
                    merge_keyed_list(existing, items, key, &child_path);
                } else if is_primitive_merge_list(&child_path) {
                    let original = existing.clone();
                    for i in items {
                        if !existing.contains(i) {
                            existing.push(i.clone());
                        }
                    }
                    *existing = in_patch_order(existing, items, &original, None);
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
    for (k, order) in p {
        let (Some(field), Some(order)) = (k.strip_prefix("$setElementOrder/"), order.as_array())
        else {
            continue;
        };
        let field_path = child(path, field);
        let key = merge_key(&field_path);
        if key.is_none() && !is_primitive_merge_list(&field_path) {
            continue;
        }
        let original = before
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(Value::Array(merged)) = t.get_mut(field) {
            *merged = in_patch_order(merged, order, &original, key);
        }
    }
}

/// What identifies a list element: its merge key's value, or itself for scalars.
fn identity<'a>(item: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(k) => item.get(k),
        None => Some(item),
    }
}

fn position(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(item, key)?;
    list.iter().position(|x| identity(x, key) == Some(id))
}

/// The real server's element order after a strategic merge (strategicpatch's
/// `normalizeElementOrder`): the elements named in `order` (the patch, or its
/// `$setElementOrder`) in that order, interleaved with the others in their `original` order.
fn in_patch_order(
    merged: &[Value],
    order: &[Value],
    original: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let (mut patched, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .iter()
        .cloned()
        .partition(|item| position(order, item, key).is_some());
    patched.sort_by_key(|item| position(order, item, key));
    server_only.sort_by_key(|item| position(original, item, key));
    let mut out = Vec::with_capacity(merged.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patched.into_iter().peekable(),
    );
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (position(original, l, key), position(original, r, key)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn merge_keyed_list(existing: &mut Vec<Value>, items: &[Value], key: &str, path: &str) {
    let original = existing.clone();
    let element_path = format!("{path}[]");
    for item in items {
        let k = item.get(key);
        let pos = existing.iter().position(|e| k.is_some() && e.get(key) == k);
        match (pos, is_delete_directive(item)) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut existing[i], item, &element_path),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item, &element_path);
                existing.push(fresh);
            }
        }
    }
    let named: Vec<Value> = items
        .iter()
        .filter(|i| !is_delete_directive(i))
        .cloned()
        .collect();
    *existing = in_patch_order(existing, &named, &original, Some(key));
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
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
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
    fn merged_lists_take_the_real_servers_order() {
        let cur = json!({"metadata": {"finalizers": ["a/a", "b/b", "c/c"]}});
        let patch = br#"{"metadata":{"finalizers":["d/d","b/b"]}}"#;
        let out = apply_patch(PatchKind::Strategic, cur, patch).unwrap();
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["d/d", "a/a", "b/b", "c/c"])
        );
        let patch = br#"{"metadata":{"finalizers":["e/e"],"$setElementOrder/finalizers":["a/a","e/e","c/c"]}}"#;
        let out = apply_patch(PatchKind::Strategic, out, patch).unwrap();
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["d/d", "a/a", "e/e", "b/b", "c/c"])
        );
    }

    #[test]
    fn a_pods_containers_merge_by_name_and_their_env_by_name() {
        let cur = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "b", "image": "y:1"}
        ]}});
        let patch = br#"{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"name":"a","image":"x:2","env":[{"name":"B","value":"2"}]}]}}"#;
        let out = apply_patch(PatchKind::Strategic, cur, patch).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([
                {"name": "a", "image": "x:2", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
                {"name": "b", "image": "y:1"}
            ])
        );
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
