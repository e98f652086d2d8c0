//! `x-kubernetes-validations` (CEL) through kube-rs's engine, `kube_cel::Validator`, with its
//! errors reshaped into the apiserver's field errors.

use std::panic::{AssertUnwindSafe, catch_unwind};

use kube_cel::{ErrorKind, ValidationError, Validator};
use serde_json::{Value, json};

use super::schema;
use super::{FieldError, FieldErrorKind};

thread_local! {
    /// `Validator` is `Send` but not `Sync` (its `cel::Context` holds `&dyn` resolvers), so one
    /// lives per thread; building one registers every Kubernetes CEL function.
    static VALIDATOR: Validator = Validator::new();
}

/// Evaluates every `x-kubernetes-validations` rule in `schema` against `obj` (and `old`, for
/// transition rules using `oldSelf`; without `old` those rules are skipped, as on create).
///
/// Each failure becomes a [`FieldError`] shaped like the apiserver's: the field is the rule's
/// node path (joined with the rule's `fieldPath` when set; the root prints `<nil>`), the value
/// is the node's schema `type` (so messages read `spec: Invalid value: "object": ...`), the
/// message is the rule's `message` (or `messageExpression`'s result, or `failed rule: <rule>`),
/// and the kind follows the rule's `reason` (`FieldValueForbidden`, `FieldValueRequired`,
/// `FieldValueDuplicate`, else `FieldValueInvalid`). A rule that errors at runtime is reported
/// as `Invalid` with `<error> evaluating rule: <rule>`; one the engine cannot compile or does
/// not support fails closed (`Internal` or `Invalid`), never silently passes.
pub fn validate_cel(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let run = || VALIDATOR.with(|v| v.validate(schema, obj, old));
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => Vec::new(),
        Ok(Err(errors)) => errors.iter().map(|e| to_field_error(schema, e)).collect(),
        Err(_) => vec![FieldError::internal(
            "",
            "the CEL engine panicked evaluating x-kubernetes-validations",
        )],
    }
}

fn to_field_error(root: &Value, e: &ValidationError) -> FieldError {
    let path = e.field_path.trim_start_matches('.');
    let node_type = rule_node(root, e)
        .and_then(schema::type_name)
        .unwrap_or_default();
    let value = json!(node_type);
    let rule = e.rule.trim();
    match e.kind {
        ErrorKind::ValidationFailure => {
            let detail = if e.message == format!("failed rule: {}", e.rule) {
                format!("failed rule: {rule}")
            } else {
                e.message.trim().to_owned()
            };
            match e.reason.as_deref().and_then(FieldErrorKind::from_reason) {
                Some(FieldErrorKind::Forbidden) => FieldError::forbidden(path, detail),
                Some(FieldErrorKind::Required) => FieldError::required(path, detail),
                Some(FieldErrorKind::Duplicate) => FieldError::duplicate(path, value),
                _ => FieldError::invalid(path, value, detail),
            }
        }
        ErrorKind::EvaluationError => {
            let cause = e
                .message
                .strip_prefix("rule evaluation error: ")
                .unwrap_or(&e.message);
            FieldError::invalid(path, value, format!("{cause} evaluating rule: {rule}"))
        }
        ErrorKind::CompilationFailure | ErrorKind::InvalidRule | ErrorKind::SchemaTooDeep => {
            FieldError::internal(path, e.message.clone())
        }
        _ => FieldError::invalid(path, value, e.message.clone()),
    }
}

/// One step of a printed field path.
enum Segment<'a> {
    Key(&'a str),
    Index,
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        out.extend(
            rest.split('[')
                .filter(|r| !r.is_empty())
                .map(|_| Segment::Index),
        );
    }
    out
}

/// The schema node that owns the failed rule: walk the error path from the root and take the
/// first node declaring this rule whose path (plus the rule's `fieldPath`) is the error path.
fn rule_node<'a>(root: &'a Value, e: &ValidationError) -> Option<&'a Value> {
    let mut node = root;
    let mut path = String::new();
    let segs = segments(&e.field_path);
    for i in 0..=segs.len() {
        if declares(node, &path, e) {
            return Some(node);
        }
        match segs.get(i)? {
            Segment::Key(k) => {
                node = schema::child(node, k)?;
                path = schema::join(&path, k);
            }
            Segment::Index => {
                node = schema::items(node)?;
                path.push_str("[0]");
            }
        }
    }
    None
}

fn declares(node: &Value, path: &str, e: &ValidationError) -> bool {
    let rules = node
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let mine = rules.into_iter().any(|r| {
        r.get("rule").and_then(Value::as_str) == Some(e.rule.as_str())
            && same_path(
                &effective(path, r.get("fieldPath").and_then(Value::as_str)),
                &e.field_path,
            )
    });
    let branches = ["allOf", "anyOf", "oneOf"].into_iter();
    mine || branches
        .filter_map(|k| node.get(k).and_then(Value::as_array))
        .flatten()
        .any(|b| declares(b, path, e))
}

/// kube-cel's join of a node path and a rule's `fieldPath`.
fn effective(base: &str, field_path: Option<&str>) -> String {
    match field_path {
        Some(fp) if fp.starts_with('.') => format!("{base}{fp}"),
        Some(fp) if !base.is_empty() => format!("{base}.{fp}"),
        Some(fp) => fp.to_owned(),
        None => base.to_owned(),
    }
}

/// Paths are equal up to list indices (the walk above visits index 0 for every item).
fn same_path(a: &str, b: &str) -> bool {
    let strip = |s: &str| -> String {
        let mut out = String::new();
        let mut in_index = false;
        for c in s.trim_start_matches('.').chars() {
            match c {
                '[' => {
                    in_index = true;
                    out.push('[');
                }
                ']' => {
                    in_index = false;
                    out.push(']');
                }
                _ if in_index => {}
                c => out.push(c),
            }
        }
        out
    };
    strip(a) == strip(b)
}

#[cfg(test)]
#[path = "cel_tests.rs"]
mod tests;
