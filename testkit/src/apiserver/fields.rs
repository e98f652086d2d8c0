//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! An approximation of structured-merge-diff that is faithful where controllers and kubectl
//! notice: ownership is tracked per leaf field path; maps merge key by key; lists are atomic
//! (the CRD default without `x-kubernetes-list-type`); an apply conflicts with another manager
//! only where both set the same field to different values; `force` takes ownership; fields a
//! manager applied before and omits now are removed unless someone else owns them.

use super::meta::{self, meta_mut};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

type Path = Vec<String>;
type PathSet = BTreeSet<Path>;

const TRACKED_META: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// Leaf paths of an object that ownership is tracked for.
fn leaves(obj: &Value, include_status: bool) -> PathSet {
    fn walk(v: &Value, prefix: &mut Path, out: &mut PathSet) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    prefix.push(k.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => {
                out.insert(prefix.clone());
            }
        }
    }
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
                        walk(x, &mut vec!["metadata".into(), f.to_string()], &mut out);
                    }
                }
            }
            _ => walk(v, &mut vec![k.clone()], &mut out),
        }
    }
    out
}

fn value_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| cur.get(seg))
}

fn set_at(v: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for seg in parents {
        if !cur.get(seg).is_some_and(Value::is_object) {
            cur[seg.as_str()] = Value::Object(Map::new());
        }
        cur = &mut cur[seg.as_str()];
    }
    let empty_map = new.as_object().is_some_and(Map::is_empty);
    if empty_map && cur.get(last).is_some_and(Value::is_object) {
        return;
    }
    cur[last.as_str()] = new;
}

/// Removes the field at `path`, then every parent map the removal left empty (as
/// structured-merge-diff does: a map that only held a manager's removed fields goes with them).
fn remove_at(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents
        .iter()
        .try_fold(&mut *v, |cur, seg| cur.get_mut(seg));
    let Some(Value::Object(m)) = parent else {
        return;
    };
    if m.remove(last).is_some() && m.is_empty() && !parents.is_empty() {
        remove_at(v, parents);
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    subresource: String,
    api_version: String,
    time: String,
    paths: PathSet,
}

fn to_fields_v1(paths: &PathSet) -> Value {
    let mut root = json!({});
    for p in paths {
        let mut cur = &mut root;
        for seg in p {
            cur = cur
                .as_object_mut()
                .expect("built as objects")
                .entry(format!("f:{seg}"))
                .or_insert(json!({}));
        }
    }
    root
}

fn from_fields_v1(v: &Value, prefix: &mut Path, out: &mut PathSet) {
    let Some(m) = v.as_object() else { return };
    let mut children = false;
    for (k, child) in m {
        if let Some(name) = k.strip_prefix("f:") {
            children = true;
            prefix.push(name.to_string());
            from_fields_v1(child, prefix, out);
            prefix.pop();
        }
    }
    if !children && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let mut paths = PathSet::new();
            from_fields_v1(
                e.get("fieldsV1").unwrap_or(&Value::Null),
                &mut Vec::new(),
                &mut paths,
            );
            Entry {
                manager: s(e, "manager"),
                operation: s(e, "operation"),
                subresource: s(e, "subresource"),
                api_version: s(e, "apiVersion"),
                time: s(e, "time"),
                paths,
            }
        })
        .collect()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.paths.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.paths),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if list.is_empty() {
        meta_mut(obj).remove("managedFields");
    } else {
        meta_mut(obj).insert("managedFields".into(), Value::Array(list));
    }
}

fn entry_mut<'a>(
    entries: &'a mut Vec<Entry>,
    manager: &str,
    op: &str,
    sub: &str,
    api_version: &str,
) -> &'a mut Entry {
    let pos = entries
        .iter()
        .position(|e| e.manager == manager && e.operation == op && e.subresource == sub);
    let i = pos.unwrap_or_else(|| {
        entries.push(Entry {
            manager: manager.into(),
            operation: op.into(),
            subresource: sub.into(),
            api_version: api_version.into(),
            time: String::new(),
            paths: PathSet::new(),
        });
        entries.len() - 1
    });
    let e = &mut entries[i];
    e.api_version = api_version.into();
    e.time = meta::now();
    e
}

/// Records a non-apply write by `manager`: it takes the fields it changed; removed fields
/// leave every manager's set.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let before = old.map(|o| leaves(o, true)).unwrap_or_default();
    let after = leaves(new, true);
    let changed: PathSet = after
        .iter()
        .filter(|p| old.is_none_or(|o| value_at(o, p) != value_at(new, p)))
        .cloned()
        .collect();
    let removed: PathSet = before.difference(&after).cloned().collect();
    let mut entries = old.map(read_entries).unwrap_or_default();
    if changed.is_empty() && removed.is_empty() {
        write_entries(new, entries);
        return;
    }
    for e in &mut entries {
        e.paths
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if !changed.is_empty() {
        let e = entry_mut(
            &mut entries,
            manager,
            "Update",
            subresource.unwrap_or(""),
            api_version,
        );
        e.paths.extend(changed);
    }
    write_entries(new, entries);
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other field manager.
    pub manager: String,
    /// The field, as `.spec.x`.
    pub field: String,
}

/// Server-side apply of `applied` by `manager` onto `live` (a skeleton when creating).
///
/// `status_only` applies to the `/status` subresource; otherwise status is left alone when
/// `has_status`. Returns the merged object with managedFields, or the conflicts.
pub fn apply(
    live: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    status_only: bool,
    has_status: bool,
) -> Result<Value, Vec<Conflict>> {
    let sub = if status_only { "status" } else { "" };
    let mut mine = leaves(applied, true);
    mine.retain(|p| {
        if status_only {
            p[0] == "status"
        } else {
            !(has_status && p[0] == "status")
        }
    });
    let mut entries = read_entries(live);
    let mut conflicts = Vec::new();
    for e in entries
        .iter_mut()
        .filter(|e| !(e.manager == manager && e.operation == "Apply" && e.subresource == sub))
    {
        let clashing: Vec<Path> = e
            .paths
            .iter()
            .filter(|p| mine.contains(*p) && value_at(live, p) != value_at(applied, p))
            .cloned()
            .collect();
        for p in clashing {
            if force {
                e.paths.remove(&p);
            } else {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    field: format!(".{}", p.join(".")),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let previous = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource == sub)
        .map(|e| e.paths.clone())
        .unwrap_or_default();
    let mut out = live.clone();
    for p in previous.difference(&mine) {
        let owned_elsewhere = entries
            .iter()
            .any(|e| !(e.manager == manager && e.operation == "Apply") && e.paths.contains(p));
        if !owned_elsewhere {
            remove_at(&mut out, p);
        }
    }
    for p in &mine {
        if let Some(v) = value_at(applied, p) {
            set_at(&mut out, p, v.clone());
        }
    }
    let e = entry_mut(&mut entries, manager, "Apply", sub, api_version);
    e.paths = mine;
    write_entries(&mut out, entries);
    Ok(out)
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
