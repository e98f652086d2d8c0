//! API errors shaped like the real API server's `Status` bodies.
//!
//! Every failure the emulator reports goes through [`ApiError`], so clients see
//! `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":...,"code":...}` exactly as
//! kube's `is_not_found`, `Api::get_opt` and `Api::entry` expect.

use serde_json::{Value, json};

/// An API error: an HTTP status code, a machine-readable reason, a message and details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code, also the `code` field of the Status body.
    pub code: u16,
    /// The `reason` field (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human readable message, worded like the real API server's.
    pub message: String,
    /// The `details` field: name, group, kind and causes.
    pub details: Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// One cause of a 422 Invalid: the field, a machine-readable reason and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`,
    /// `FieldValueTooLong`, `FieldValueForbidden`, `FieldValueDuplicate`, ...
    pub reason: &'static str,
    /// The field path, e.g. `spec.githubApp.appId`.
    pub field: String,
    /// The message, e.g. `Invalid value: "x": must match ...`.
    pub message: String,
}

impl Cause {
    /// A `FieldValueInvalid` cause.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What an error is about: the resource (plural), its group and the object's name.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// API group, empty for the core group.
    pub group: &'a str,
    /// Plural resource name, e.g. `configmaps`.
    pub resource: &'a str,
    /// Object name.
    pub name: &'a str,
}

impl Subject<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self) -> Value {
        let mut d = json!({ "name": self.name, "kind": self.resource });
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }
}

/// Shorthand for results whose error is an [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>, details: Value) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details,
        }
    }

    /// 404: the object does not exist.
    pub fn not_found(s: Subject<'_>) -> Self {
        let msg = format!("{} \"{}\" not found", s.qualified(), s.name);
        Self::new(404, "NotFound", msg, s.details())
    }

    /// 404 for a URL that names no resource or endpoint at all.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
            json!({}),
        )
    }

    /// 409: an object with that name exists already.
    pub fn already_exists(s: Subject<'_>) -> Self {
        let msg = format!("{} \"{}\" already exists", s.qualified(), s.name);
        Self::new(409, "AlreadyExists", msg, s.details())
    }

    /// 409: the update was based on a stale resourceVersion (or a failed precondition).
    pub fn conflict(s: Subject<'_>, why: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{}\": {why}",
            s.qualified(),
            s.name
        );
        Self::new(409, "Conflict", msg, s.details())
    }

    /// 409 with the message the real server gives for a stale resourceVersion.
    pub fn stale(s: Subject<'_>) -> Self {
        Self::conflict(
            s,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 for a server-side apply that sets fields other managers own; `conflicts` are
    /// `(manager, field)` pairs with the manager as the real server prints it, e.g.
    /// `("\"kubectl\"", ".spec.size")`. Worded and detailed as the real server does.
    pub fn apply_conflicts(conflicts: &[(String, String)]) -> Self {
        let msg = match conflicts {
            [(m, f)] => format!("Apply failed with 1 conflict: conflict with {m}: {f}"),
            _ => {
                let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
                managers.sort();
                managers.dedup();
                let lines: Vec<String> = managers
                    .iter()
                    .flat_map(|m| {
                        std::iter::once(format!("conflicts with {m}:")).chain(
                            conflicts
                                .iter()
                                .filter(|(c, _)| c == *m)
                                .map(|(_, f)| format!("- {f}")),
                        )
                    })
                    .collect();
                format!(
                    "Apply failed with {} conflicts: {}",
                    conflicts.len(),
                    lines.join("\n")
                )
            }
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": f}))
            .collect();
        Self::new(409, "Conflict", msg, json!({ "causes": causes }))
    }

    /// 422: the object is invalid; `causes` are `(field, message)` pairs (reason
    /// `FieldValueInvalid`).
    pub fn invalid(kind: &str, s: Subject<'_>, causes: &[(String, String)]) -> Self {
        let causes: Vec<Cause> = causes.iter().map(|(f, m)| Cause::invalid(f, m)).collect();
        Self::invalid_causes(kind, s, &causes)
    }

    /// 422 Invalid with typed causes, worded like the real server: `Kind.group "name" is
    /// invalid: field: message`, or `[...]` around several.
    pub fn invalid_causes(kind: &str, s: Subject<'_>, causes: &[Cause]) -> Self {
        let group = if s.group.is_empty() {
            String::new()
        } else {
            format!(".{}", s.group)
        };
        let text: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let list = match text.len() {
            1 => text[0].clone(),
            _ => format!("[{}]", text.join(", ")),
        };
        let msg = format!("{kind}{group} \"{}\" is invalid: {list}", s.name);
        let mut details = json!({ "kind": kind });
        if !s.name.is_empty() {
            details["name"] = json!(s.name);
        }
        if !s.group.is_empty() {
            details["group"] = json!(s.group);
        }
        details["causes"] = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self::new(422, "Invalid", msg, details)
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message, json!({}))
    }

    /// 403: refused, e.g. creating content in a terminating namespace.
    pub fn forbidden(s: Subject<'_>, why: &str) -> Self {
        let msg = format!("{} \"{}\" is forbidden: {why}", s.qualified(), s.name);
        Self::new(403, "Forbidden", msg, s.details())
    }

    /// 405: the verb is not supported on that path.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message, json!({}))
    }

    /// 410: the requested resourceVersion is older than the kept history.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        let msg = format!("too old resource version: {requested} ({oldest})");
        Self::new(410, "Expired", msg, json!({}))
    }

    /// 415: the patch content type is not one the server understands.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        let msg = format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
        );
        Self::new(415, "UnsupportedMediaType", msg, json!({}))
    }

    /// 500: an injected or internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message, json!({}))
    }

    /// The `Status` body for this error.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CM: Subject<'static> = Subject {
        group: "",
        resource: "configmaps",
        name: "a",
    };

    #[test]
    fn a_not_found_status_names_the_resource_and_object_like_the_real_server() {
        let s = ApiError::not_found(CM).to_status();
        assert_eq!(s["message"], "configmaps \"a\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["kind"], "configmaps");
    }

    #[test]
    fn a_grouped_resource_is_qualified_with_its_group() {
        let s = Subject {
            group: "patchbay.dev",
            resource: "connections",
            name: "x",
        };
        let e = ApiError::stale(s);
        assert!(
            e.message
                .starts_with("Operation cannot be fulfilled on connections.patchbay.dev \"x\"")
        );
        assert_eq!(e.to_status()["details"]["group"], "patchbay.dev");
    }

    #[test]
    fn an_invalid_status_lists_every_cause_with_its_field() {
        let causes = vec![("metadata.name".to_string(), "Required value".to_string())];
        let s = ApiError::invalid("ConfigMap", CM, &causes).to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
        assert_eq!(
            s["message"],
            "ConfigMap \"a\" is invalid: metadata.name: Required value"
        );
    }

    #[test]
    fn several_causes_are_bracketed_and_keep_their_reasons() {
        let s = Subject {
            group: "example.com",
            resource: "widgets",
            name: "w",
        };
        let causes = [
            Cause {
                reason: "FieldValueRequired",
                field: "spec.a".into(),
                message: "Required value".into(),
            },
            Cause::invalid(
                "spec.b",
                "Invalid value: 5: must be less than or equal to 3",
            ),
        ];
        let e = ApiError::invalid_causes("Widget", s, &causes);
        assert_eq!(
            e.message,
            "Widget.example.com \"w\" is invalid: [spec.a: Required value, spec.b: Invalid value: 5: must be less than or equal to 3]"
        );
        assert_eq!(e.details["causes"][0]["reason"], "FieldValueRequired");
    }
}
