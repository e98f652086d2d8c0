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

fn remove_at(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents.iter().try_fold(v, |cur, seg| cur.get_mut(seg));
    if let Some(Value::Object(m)) = parent {
        m.remove(last);
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
mod tests {
    use super::*;

    fn managers(v: &Value) -> Vec<(String, String)> {
        read_entries(v)
            .into_iter()
            .map(|e| (e.manager, e.operation))
            .collect()
    }

    #[test]
    fn an_update_gives_the_manager_the_fields_it_changed() {
        let old = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let mut created = old.clone();
        record_update(None, &mut created, "creator", "v1", None);
        let mut new = created.clone();
        new["data"]["k"] = json!("w");
        record_update(Some(&created), &mut new, "editor", "v1", None);
        let e = read_entries(&new);
        let editor = e.iter().find(|e| e.manager == "editor").unwrap();
        assert!(
            editor
                .paths
                .contains(&vec!["data".to_string(), "k".to_string()])
        );
        let creator = e.iter().find(|e| e.manager == "creator").unwrap();
        assert!(creator.paths.contains(&vec![
            "metadata".to_string(),
            "labels".to_string(),
            "x".to_string()
        ]));
        assert!(
            !creator
                .paths
                .contains(&vec!["data".to_string(), "k".to_string()])
        );
    }

    #[test]
    fn applying_merges_maps_and_records_the_appliers_fields() {
        let live = json!({"metadata": {"name": "a", "labels": {"other": "1"}}, "spec": {"a": 1}});
        let out = apply(
            &live,
            &json!({"spec": {"b": 2}, "metadata": {"labels": {"mine": "2"}}}),
            "me",
            false,
            "v1",
            false,
            false,
        )
        .unwrap();
        assert_eq!(out["spec"], json!({"a": 1, "b": 2}));
        assert_eq!(
            out["metadata"]["labels"],
            json!({"other": "1", "mine": "2"})
        );
        assert_eq!(
            managers(&out),
            vec![("me".to_string(), "Apply".to_string())]
        );
    }

    #[test]
    fn fields_a_manager_stops_applying_are_removed() {
        let first = apply(
            &json!({}),
            &json!({"spec": {"a": 1, "b": 2}}),
            "me",
            false,
            "v1",
            false,
            false,
        )
        .unwrap();
        let second = apply(
            &first,
            &json!({"spec": {"a": 1}}),
            "me",
            false,
            "v1",
            false,
            false,
        )
        .unwrap();
        assert_eq!(second["spec"], json!({"a": 1}));
    }

    #[test]
    fn applying_a_different_value_to_anothers_field_conflicts_unless_forced() {
        let first = apply(
            &json!({}),
            &json!({"spec": {"a": 1}}),
            "one",
            false,
            "v1",
            false,
            false,
        )
        .unwrap();
        let c = apply(
            &first,
            &json!({"spec": {"a": 2}}),
            "two",
            false,
            "v1",
            false,
            false,
        )
        .unwrap_err();
        assert_eq!(
            c,
            vec![Conflict {
                manager: "one".into(),
                field: ".spec.a".into()
            }]
        );
        assert!(
            apply(
                &first,
                &json!({"spec": {"a": 1}}),
                "two",
                false,
                "v1",
                false,
                false
            )
            .is_ok()
        );
        let forced = apply(
            &first,
            &json!({"spec": {"a": 2}}),
            "two",
            true,
            "v1",
            false,
            false,
        )
        .unwrap();
        assert_eq!(forced["spec"]["a"], 2);
        let one = read_entries(&forced)
            .into_iter()
            .find(|e| e.manager == "one");
        assert!(one.is_none(), "the forced field left the first manager");
    }

    #[test]
    fn status_is_applied_only_through_the_status_subresource() {
        let live = json!({"spec": {"a": 1}, "status": {"s": "old"}});
        let main = apply(
            &live,
            &json!({"spec": {"a": 1}, "status": {"s": "new"}}),
            "me",
            false,
            "v1",
            false,
            true,
        )
        .unwrap();
        assert_eq!(main["status"]["s"], "old");
        let st = apply(
            &live,
            &json!({"status": {"s": "new"}}),
            "me",
            false,
            "v1",
            true,
            true,
        )
        .unwrap();
        assert_eq!(st["status"]["s"], "new");
        assert_eq!(read_entries(&st)[0].subresource, "status");
    }

    #[test]
    fn fields_v1_round_trips() {
        let paths: PathSet = [
            vec!["spec".to_string(), "a".to_string()],
            vec![
                "metadata".to_string(),
                "labels".to_string(),
                "x".to_string(),
            ],
        ]
        .into();
        let v = to_fields_v1(&paths);
        assert_eq!(v["f:spec"]["f:a"], json!({}));
        let mut back = PathSet::new();
        from_fields_v1(&v, &mut Vec::new(), &mut back);
        assert_eq!(back, paths);
    }
}
