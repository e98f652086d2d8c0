//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! An approximation of structured-merge-diff that is faithful where controllers and kubectl
//! notice: ownership is tracked per leaf field path; maps merge key by key; lists the CRD
//! schema declares `x-kubernetes-list-type: map` merge element by element (so two managers can
//! each own their own conditions), other lists are atomic; an apply conflicts with another
//! manager only where both set the same field to different values; `force` takes ownership;
//! fields a manager applied before and omits now are removed unless someone else owns them.

use super::fieldpath::{Path, PathSet, leaves, remove_at, set_at, value_at};
use crate::apiserver::store::meta::{self, meta_mut};
use serde_json::{Value, json};

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
            let key = if seg.starts_with("k:") {
                seg.clone()
            } else {
                format!("f:{seg}")
            };
            cur = cur
                .as_object_mut()
                .expect("built as objects")
                .entry(key)
                .or_insert(json!({}));
        }
    }
    root
}

fn from_fields_v1(v: &Value, prefix: &mut Path, out: &mut PathSet) {
    let Some(m) = v.as_object() else { return };
    let mut children = false;
    for (k, child) in m {
        let seg = k
            .strip_prefix("f:")
            .map(String::from)
            .or_else(|| k.starts_with("k:").then(|| k.clone()));
        if let Some(seg) = seg {
            children = true;
            prefix.push(seg);
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

/// Who writes, and how the object's fields are shaped.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// The apiVersion the manager wrote with.
    pub api_version: &'a str,
    /// The `/status` subresource, or the main resource.
    pub status_only: bool,
    /// The CRD version's `openAPIV3Schema` (None for built-ins: all lists atomic).
    pub schema: Option<&'a Value>,
}

impl Writer<'_> {
    fn subresource(&self) -> &'static str {
        if self.status_only { "status" } else { "" }
    }
}

/// Records a non-apply write: the writer takes the fields it changed; removed fields leave
/// every manager's set.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: Writer<'_>) {
    let before = old.map(|o| leaves(o, true, w.schema)).unwrap_or_default();
    let after = leaves(new, true, w.schema);
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
            w.manager,
            "Update",
            w.subresource(),
            w.api_version,
        );
        e.paths.extend(changed);
    }
    write_entries(new, entries);
}

/// A path as the real server prints it: `.status.conditions[type="Ready"].status`.
fn display_path(p: &Path) -> String {
    let mut out = String::new();
    for seg in p {
        match seg
            .strip_prefix("k:")
            .and_then(|k| serde_json::from_str::<Value>(k).ok())
        {
            Some(Value::Object(keys)) => {
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            _ => {
                out.push('.');
                out.push_str(seg);
            }
        }
    }
    out
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other field manager, as the real server names it in messages: `"kubectl"`, plus
    /// ` with subresource "status"` and, for an `Update` manager, ` using v1`.
    pub manager: String,
    /// The field, as `.spec.x`.
    pub field: String,
}

fn describe(e: &Entry) -> String {
    let mut s = format!("{:?}", e.manager);
    if !e.subresource.is_empty() {
        s.push_str(&format!(" with subresource {:?}", e.subresource));
    }
    if e.operation == "Update" {
        s.push_str(&format!(" using {}", e.api_version));
    }
    s
}

/// Server-side apply of `applied` by the writer onto `live` (a skeleton when creating).
///
/// On the main resource, status is left alone when the resource `has_status`; with
/// `status_only` only status is applied. Returns the merged object with managedFields, or the
/// conflicts (unless `force`, which takes the fields over).
pub fn apply(
    live: &Value,
    applied: &Value,
    w: Writer<'_>,
    force: bool,
    has_status: bool,
) -> Result<Value, Vec<Conflict>> {
    let (manager, sub) = (w.manager, w.subresource());
    let mut mine = leaves(applied, true, w.schema);
    mine.retain(|p| {
        if w.status_only {
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
                    manager: describe(e),
                    field: display_path(&p),
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
    let e = entry_mut(&mut entries, manager, "Apply", sub, w.api_version);
    e.paths = mine;
    write_entries(&mut out, entries);
    Ok(out)
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
