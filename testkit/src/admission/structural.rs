//! Schema validation: what kube-openapi's `SchemaValidator` checks on a custom object, plus the
//! `x-kubernetes-list-type` set/map duplicate check apiextensions-apiserver adds.

use serde_json::{Map, Value, json};

use super::schema::{self, Additional};
use super::{FieldError, gofmt, scalars};

/// Validates `obj` against `schema` (an `openAPIV3Schema`) and returns every violation, in
/// the apiserver's words: types (`nullable`, `x-kubernetes-int-or-string`), `required`,
/// `enum`, `pattern`, cheap `format`s, numeric bounds, string lengths, item and property
/// counts, `uniqueItems`, list-type `set`/`map` duplicates, `additionalProperties` and
/// `allOf`/`anyOf`/`oneOf`/`not`. Schema pieces of the wrong shape are ignored.
pub fn validate_schema(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    node(schema, obj, "", &mut errs);
    errs
}

/// The JSON type name kube-openapi reports for a decoded value.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The types a node accepts; empty means any.
fn allowed_types(s: &Value) -> Vec<&str> {
    if schema::flag(s, "x-kubernetes-int-or-string") {
        return vec!["integer", "string"];
    }
    schema::type_name(s)
        .filter(|t| !t.is_empty())
        .into_iter()
        .collect()
}

fn type_ok(allowed: &[&str], v: &Value) -> bool {
    let kind = kind_of(v);
    allowed.is_empty()
        || allowed.contains(&kind)
        || (kind == "integer" && allowed.contains(&"number"))
        || (kind == "number"
            && allowed.contains(&"integer")
            && v.as_f64().is_some_and(|f| f.fract() == 0.0))
}

fn node(s: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    let allowed = allowed_types(s);
    if v.is_null() && schema::flag(s, "nullable") {
        return;
    }
    if !type_ok(&allowed, v) {
        let kind = kind_of(v);
        let detail = format!(
            "{path} in body must be of type {}: {}",
            allowed.join(","),
            gofmt::quote(kind)
        );
        errs.push(FieldError::type_invalid(path, json!(kind), detail));
        return;
    }
    composites(s, v, path, errs);
    match v {
        Value::String(text) => scalars::check_string(s, text, path, errs),
        Value::Number(n) => scalars::check_number(s, n, path, errs),
        Value::Array(items) => array(s, items, path, errs),
        _ => {}
    }
    scalars::check_enum(s, v, path, errs);
    if let Value::Object(map) = v {
        object(s, map, path, errs);
    }
}

fn object(s: &Value, map: &Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
        && map.len() as u64 > max
    {
        errs.push(FieldError::too_many(path, map.len(), max));
    }
    if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
        && (map.len() as u64) < min
    {
        let detail = format!("{path} in body should have at least {min} properties");
        errs.push(FieldError::invalid(path, json!(map.len()), detail));
    }
    for key in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(key) {
            errs.push(FieldError::required(&schema::join(path, key), ""));
        }
    }
    let props = schema::properties(s);
    for (key, value) in map {
        if let Some(child) = props.and_then(|p| p.get(key)) {
            node(child, value, &schema::join(path, key), errs);
        } else if let Additional::Schema(child) = schema::additional(s) {
            node(child, value, &schema::join(path, key), errs);
        }
    }
}

fn array(s: &Value, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    if let Some(item_schema) = schema::items(s) {
        for (i, item) in items.iter().enumerate() {
            node(item_schema, item, &schema::index(path, i), errs);
        }
    }
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        let detail = format!("{path} in body should have at least {min} items");
        errs.push(FieldError::invalid(path, json!(items.len()), detail));
    }
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        errs.push(FieldError::too_many(path, items.len(), max));
    }
    if schema::flag(s, "uniqueItems")
        && items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].iter().any(|b| scalars::same(a, b)))
    {
        let detail = format!("{path} in body shouldn't contain duplicates");
        errs.push(FieldError::invalid(path, json!(""), detail));
    }
    list_type(s, items, path, errs);
}

/// `x-kubernetes-list-type: set` (whole items) and `map` (the `x-kubernetes-list-map-keys`)
/// must be unique; each later duplicate is reported at its index.
fn list_type(s: &Value, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let keys: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let identity = |item: &Value| -> Option<Value> {
        match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => Some(item.clone()),
            Some("map") if !keys.is_empty() => {
                let obj = item.as_object()?;
                let picked: Map<String, Value> = keys
                    .iter()
                    .filter_map(|k| obj.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                    .collect();
                Some(Value::Object(picked))
            }
            _ => None,
        }
    };
    let mut seen: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(id) = identity(item) else { continue };
        if seen.iter().any(|prev| scalars::same(prev, &id)) {
            errs.push(FieldError::duplicate(&schema::index(path, i), id));
        } else {
            seen.push(id);
        }
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not`, reported like kube-openapi: a composite message on the
/// root path (kube-openapi's composite errors carry no field) plus the best failing branch.
fn composites(s: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let branches = |key: &str| -> Vec<Vec<FieldError>> {
        let list = s
            .get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        list.iter()
            .map(|b| {
                let mut e = Vec::new();
                node(b, v, path, &mut e);
                e
            })
            .collect()
    };
    let composite = |msg: String| FieldError::invalid("", json!(""), msg);
    let best = |results: Vec<Vec<FieldError>>| {
        results
            .into_iter()
            .filter(|r| !r.is_empty())
            .min_by_key(Vec::len)
    };
    let name = gofmt::quote(path);

    let any = branches("anyOf");
    if !any.is_empty() && any.iter().all(|r| !r.is_empty()) {
        errs.push(composite(format!(
            "{name} must validate at least one schema (anyOf)"
        )));
        errs.extend(best(any).unwrap_or_default());
    }
    let one = branches("oneOf");
    let valid = one.iter().filter(|r| r.is_empty()).count();
    if !one.is_empty() && valid != 1 {
        let found = if valid == 0 {
            "Found none valid".to_owned()
        } else {
            format!("Found {valid} valid alternatives")
        };
        errs.push(composite(format!(
            "{name} must validate one and only one schema (oneOf). {found}"
        )));
        if valid == 0 {
            errs.extend(best(one).unwrap_or_default());
        }
    }
    let all = branches("allOf");
    let failed = all.iter().filter(|r| !r.is_empty()).count();
    if failed > 0 {
        let none = if failed == all.len() {
            ". None validated"
        } else {
            ""
        };
        errs.extend(all.into_iter().flatten());
        errs.push(composite(format!(
            "{name} must validate all the schemas (allOf){none}"
        )));
    }
    if let Some(not) = s.get("not").filter(|n| n.is_object()) {
        let mut e = Vec::new();
        node(not, v, path, &mut e);
        if e.is_empty() {
            errs.push(composite(format!(
                "{name} must not validate the schema (not)"
            )));
        }
    }
}

#[cfg(test)]
#[path = "structural_tests.rs"]
mod tests;
