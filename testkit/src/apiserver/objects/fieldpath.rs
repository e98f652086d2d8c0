//! Field paths for ownership tracking: which leaves an object has, and reading, setting and
//! removing a value at a path.
//!
//! A path is a list of segments: a field name, or `k:{"type":"Ready"}` for the element of a
//! list the schema declares `x-kubernetes-list-type: map` (keyed by
//! `x-kubernetes-list-map-keys`). Other lists are atomic leaves, as structured-merge-diff treats
//! them. Built-in kinds have no schema here, so their lists are atomic.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// A path of segments.
pub type Path = Vec<String>;
/// A set of paths.
pub type PathSet = BTreeSet<Path>;

const TRACKED_META: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// The schema of a child field (`properties`, else `additionalProperties`).
fn child_schema<'a>(schema: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let s = schema?;
    s.get("properties")
        .and_then(|p| p.get(field))
        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
}

/// The keys of a list the schema declares a map-list, if it does.
fn map_keys(schema: Option<&Value>) -> Option<Vec<String>> {
    let s = schema?;
    if s.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    let keys: Vec<String> = s
        .get("x-kubernetes-list-map-keys")?
        .as_array()?
        .iter()
        .filter_map(|k| k.as_str().map(String::from))
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// The `k:{...}` segment naming a map-list element.
fn key_segment(item: &Value, keys: &[String]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), item.get(k)?.clone());
    }
    Some(format!("k:{}", Value::Object(m)))
}

fn parse_key_segment(seg: &str) -> Option<Map<String, Value>> {
    let text = seg.strip_prefix("k:")?;
    serde_json::from_str::<Value>(text)
        .ok()?
        .as_object()
        .cloned()
}

fn matches_keys(item: &Value, keys: &Map<String, Value>) -> bool {
    keys.iter().all(|(k, v)| item.get(k) == Some(v))
}

fn walk(v: &Value, schema: Option<&Value>, prefix: &mut Path, out: &mut PathSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(k.clone());
                walk(child, child_schema(schema, k), prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => match map_keys(schema) {
            // A map-list is owned element by element; an empty one claims nothing.
            Some(keys) => {
                let item_schema = schema.and_then(|s| s.get("items"));
                for item in items {
                    let Some(seg) = key_segment(item, &keys) else {
                        out.insert(prefix.clone());
                        continue;
                    };
                    prefix.push(seg);
                    walk(item, item_schema, prefix, out);
                    prefix.pop();
                }
            }
            None => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// Leaf paths of an object that ownership is tracked for (metadata: labels, annotations,
/// finalizers, ownerReferences; never apiVersion/kind; status only if `include_status`).
pub fn leaves(obj: &Value, include_status: bool, schema: Option<&Value>) -> PathSet {
    let mut out = PathSet::new();
    let Some(top) = obj.as_object() else {
        return out;
    };
    for (k, v) in top {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" if !include_status => {}
            "metadata" => {
                for f in TRACKED_META {
                    if let Some(x) = v.get(*f) {
                        walk(
                            x,
                            None,
                            &mut vec!["metadata".into(), f.to_string()],
                            &mut out,
                        );
                    }
                }
            }
            _ => walk(v, child_schema(schema, k), &mut vec![k.clone()], &mut out),
        }
    }
    out
}

fn step<'a>(cur: &'a Value, seg: &str) -> Option<&'a Value> {
    match parse_key_segment(seg) {
        Some(keys) => cur.as_array()?.iter().find(|i| matches_keys(i, &keys)),
        None => cur.get(seg),
    }
}

/// The value at a path.
pub fn value_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| step(cur, seg))
}

/// The child at `seg`, created (as an empty map, or a keyed list element) when missing.
fn step_mut<'a>(cur: &'a mut Value, seg: &str) -> &'a mut Value {
    match parse_key_segment(seg) {
        Some(keys) => {
            if !cur.is_array() {
                *cur = json!([]);
            }
            let items = cur.as_array_mut().expect("made an array above");
            let pos = items
                .iter()
                .position(|i| matches_keys(i, &keys))
                .unwrap_or_else(|| {
                    items.push(Value::Object(keys.clone()));
                    items.len() - 1
                });
            &mut items[pos]
        }
        None => {
            if !cur.is_object() {
                *cur = json!({});
            }
            let m = cur.as_object_mut().expect("made an object above");
            m.entry(seg.to_string()).or_insert(Value::Null)
        }
    }
}

/// Sets the value at a path, creating parents; an empty map never replaces an existing one.
pub fn set_at(v: &mut Value, path: &[String], new: Value) {
    let mut cur = v;
    for seg in path {
        cur = step_mut(cur, seg);
    }
    if new.as_object().is_some_and(Map::is_empty) && cur.is_object() {
        return;
    }
    *cur = new;
}

/// Removes the value at a path; a map left empty by it, or a keyed list element left with
/// nothing but its keys, goes too.
pub fn remove_at(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(parent) = parents
        .iter()
        .try_fold(&mut *v, |cur, seg| match parse_key_segment(seg) {
            Some(keys) => cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| matches_keys(i, &keys)),
            None => cur.get_mut(seg.as_str()),
        })
    else {
        return;
    };
    let emptied = match (parse_key_segment(last), parent) {
        (Some(keys), Value::Array(items)) => {
            items.retain(|i| !matches_keys(i, &keys));
            false
        }
        (None, Value::Object(m)) => m.remove(last).is_some() && m.is_empty(),
        _ => false,
    };
    // A map that only held the removed field goes with it (as structured-merge-diff does).
    if emptied && !parents.is_empty() && parse_key_segment(&parents[parents.len() - 1]).is_none() {
        remove_at(v, parents);
        return;
    }
    // Drop a keyed element that only its key fields remain of.
    if let Some(pos) = parents.iter().rposition(|s| s.starts_with("k:")) {
        let element_path = &parents[..=pos];
        let keys = parse_key_segment(&parents[pos]).unwrap_or_default();
        let only_keys = value_at(v, element_path)
            .and_then(Value::as_object)
            .is_some_and(|m| m.keys().all(|k| keys.contains_key(k)));
        if only_keys {
            remove_at(v, element_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"properties": {"status": {"properties": {"conditions": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {"type": "object"}
        }}}}})
    }

    fn p(segs: &[&str]) -> Path {
        segs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn map_list_elements_are_keyed_and_other_lists_are_atomic() {
        let obj = json!({"spec": {"repos": ["a", "b"]}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Verified", "status": "False"}
        ]}});
        let l = leaves(&obj, true, Some(&schema()));
        assert!(l.contains(&p(&["spec", "repos"])));
        assert!(l.contains(&p(&[
            "status",
            "conditions",
            r#"k:{"type":"Ready"}"#,
            "status"
        ])));
        assert!(l.contains(&p(&[
            "status",
            "conditions",
            r#"k:{"type":"Verified"}"#,
            "type"
        ])));
        let without_schema = leaves(&obj, true, None);
        assert!(without_schema.contains(&p(&["status", "conditions"])));
    }

    #[test]
    fn keyed_paths_read_write_and_remove_elements() {
        let mut obj = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let verified = p(&["status", "conditions", r#"k:{"type":"Verified"}"#, "status"]);
        set_at(&mut obj, &verified, json!("False"));
        assert_eq!(
            obj["status"]["conditions"][1],
            json!({"type": "Verified", "status": "False"})
        );
        assert_eq!(value_at(&obj, &verified), Some(&json!("False")));
        remove_at(&mut obj, &verified);
        assert_eq!(
            obj["status"]["conditions"].as_array().unwrap().len(),
            1,
            "an element of only keys is dropped"
        );
        remove_at(&mut obj, &p(&["status", "nope", "x"]));
    }
}
