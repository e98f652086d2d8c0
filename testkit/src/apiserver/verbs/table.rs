//! `Table` responses (what `kubectl get` asks for), with printer columns evaluated by a small
//! JSONPath subset: `.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.type=="Ready")].status`.

use crate::apiserver::store::meta;
use crate::apiserver::store::resources::{PrinterColumn, ResourceInfo};
use serde_json::{Value, json};

/// Evaluates a printer-column JSONPath; several matches are joined with commas.
pub fn eval(obj: &Value, path: &str) -> Vec<Value> {
    let mut cur = vec![obj.clone()];
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    for seg in split_segments(path) {
        let mut next = Vec::new();
        for v in &cur {
            step(v, &seg, &mut next);
        }
        cur = next;
    }
    cur
}

fn split_segments(path: &str) -> Vec<String> {
    let mut segs = Vec::new();
    let mut buf = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => {
                if depth == 0 && !buf.is_empty() {
                    segs.push(std::mem::take(&mut buf));
                }
                depth += 1;
                buf.push(c);
            }
            ']' => {
                depth -= 1;
                buf.push(c);
                if depth == 0 {
                    segs.push(std::mem::take(&mut buf));
                }
            }
            '.' if depth == 0 => {
                if !buf.is_empty() {
                    segs.push(std::mem::take(&mut buf));
                }
            }
            _ => buf.push(c),
        }
    }
    if !buf.is_empty() {
        segs.push(buf);
    }
    segs
}

fn step(v: &Value, seg: &str, out: &mut Vec<Value>) {
    let Some(inner) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        if let Some(x) = v.get(seg) {
            out.push(x.clone());
        }
        return;
    };
    let items = v.as_array().cloned().unwrap_or_default();
    if inner == "*" {
        out.extend(items);
    } else if let Ok(i) = inner.parse::<usize>() {
        out.extend(items.get(i).cloned());
    } else if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
        let Some((field, want)) = filter.split_once("==") else {
            return;
        };
        let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
        let field = field.trim();
        out.extend(items.into_iter().filter(|i| {
            eval(i, &format!(".{field}"))
                .first()
                .is_some_and(|x| match x {
                    Value::String(s) => s == want,
                    other => other.to_string().eq(want),
                })
        }));
    }
}

fn cell(obj: &Value, col: &PrinterColumn) -> Value {
    let found = eval(obj, &col.json_path);
    match col.type_.as_str() {
        // A Pod's ready containers out of those in its spec (`.spec.containers`), as `0/2`.
        "ready" => {
            let total = found.first().and_then(Value::as_array).map_or(0, Vec::len);
            let ready = eval(obj, ".status.containerStatuses[*].ready")
                .iter()
                .filter(|r| **r == Value::Bool(true))
                .count();
            json!(format!("{ready}/{total}"))
        }
        "restarts" => json!(found.iter().filter_map(Value::as_i64).sum::<i64>()),
        "count" => json!(found.first().map_or(0, |v| match v {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        })),
        "date" => match found
            .first()
            .and_then(Value::as_str)
            .and_then(meta::seconds_since)
        {
            Some(secs) => json!(meta::human_duration(secs)),
            None => json!("<unknown>"),
        },
        _ if found.is_empty() => Value::Null,
        _ if found.len() == 1 => found.into_iter().next().unwrap_or(Value::Null),
        _ => json!(
            found
                .iter()
                .map(|v| v.as_str().map_or(v.to_string(), String::from))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// The `PartialObjectMetadata` form of an object (metadata-only requests and table rows).
pub fn partial_metadata(o: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn column_definition(col: &PrinterColumn) -> Value {
    let type_ = match col.type_.as_str() {
        "count" | "restarts" => "integer",
        "ready" => "string",
        "date" => "string",
        t => t,
    };
    json!({"name": col.name, "type": type_, "format": "", "description": col.description, "priority": col.priority})
}

/// Renders objects as a `meta.k8s.io/v1` Table. `include_object` is the `includeObject`
/// parameter: `Object`, `None`, or `Metadata` (the default).
pub fn table(
    ri: &ResourceInfo,
    objects: &[&Value],
    resource_version: &str,
    cont: Option<&str>,
    include_object: &str,
) -> Value {
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace."
    })];
    defs.extend(ri.printer_columns.iter().map(column_definition));
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![json!(meta::meta_str(o, "name"))];
            cells.extend(ri.printer_columns.iter().map(|c| cell(o, c)));
            let object = match include_object {
                "Object" => (*o).clone(),
                "None" => Value::Null,
                _ => partial_metadata(o),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    let mut md = json!({"resourceVersion": resource_version});
    if let Some(c) = cont {
        md["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj() -> Value {
        json!({
            "metadata": {"name": "a", "creationTimestamp": meta::now()},
            "spec": {"repos": ["x", "y"]},
            "status": {"conditions": [{"type": "Verified", "status": "False"}, {"type": "Ready", "status": "True"}]}
        })
    }

    #[test]
    fn a_condition_filter_picks_the_named_condition() {
        let got = eval(&obj(), r#".status.conditions[?(@.type=="Ready")].status"#);
        assert_eq!(got, vec![json!("True")]);
        assert!(eval(&obj(), ".status.missing").is_empty());
        assert_eq!(eval(&obj(), ".spec.repos[1]"), vec![json!("y")]);
    }

    #[test]
    fn a_table_has_the_name_column_first_then_the_printer_columns() {
        let ri = crate::apiserver::store::resources::Registry::with_builtins()
            .get("", "v1", "configmaps")
            .unwrap();
        let mut o = obj();
        o["data"] = json!({"k": "v", "l": "w"});
        let t = table(&ri, &[&o], "7", None, "Metadata");
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["rows"][0]["cells"], json!(["a", 2, "0s"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn several_matches_are_joined_with_commas() {
        let col = PrinterColumn {
            name: "R".into(),
            type_: "string".into(),
            json_path: ".spec.repos[*]".into(),
            description: String::new(),
            priority: 0,
        };
        assert_eq!(cell(&obj(), &col), json!("x,y"));
    }
}
