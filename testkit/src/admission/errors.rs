//! Field errors shaped like `k8s.io/apimachinery/pkg/util/validation/field.Error`, and the
//! `Status` the apiserver answers a rejected create or update with.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Value, json};

use super::{gofmt, schema};

/// The kind of a field error, mirroring `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// `field.NotFound`: a referenced value does not exist.
    NotFound,
    /// `field.Required`: a required field is absent.
    Required,
    /// `field.Duplicate`: a set or map list holds the same item (key) twice.
    Duplicate,
    /// `field.Invalid`: the value breaks a constraint.
    Invalid,
    /// `field.NotSupported`: the value is not one of an enumeration.
    NotSupported,
    /// `field.Forbidden`: the field may not be set (here, now, or by this user).
    Forbidden,
    /// `field.TooLong`: a string is longer than its `maxLength`.
    TooLong,
    /// `field.TooMany`: a list or map has more entries than allowed.
    TooMany,
    /// `field.InternalError`: the validator itself failed (e.g. a rule that does not compile).
    Internal,
    /// `field.TypeInvalid`: the value has the wrong JSON type or format.
    TypeInvalid,
}

impl FieldErrorKind {
    /// The `reason` of a `StatusCause` (`metav1.CauseType`), e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human-readable error type that starts a message, e.g. `Required value`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }

    /// The kind whose [`reason`](Self::reason) is `reason`, for CEL rules that name one.
    pub fn from_reason(reason: &str) -> Option<Self> {
        [
            Self::NotFound,
            Self::Required,
            Self::Duplicate,
            Self::Invalid,
            Self::NotSupported,
            Self::Forbidden,
            Self::TooLong,
            Self::TooMany,
            Self::Internal,
            Self::TypeInvalid,
        ]
        .into_iter()
        .find(|k| k.reason() == reason)
    }
}

/// One admission failure on one field, as the apiserver reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field path as the apiserver prints it, e.g. `spec.githubApp.appId` or
    /// `spec.repositories[3]`; the object root prints as `<nil>`.
    pub field: String,
    /// What kind of failure this is.
    pub kind: FieldErrorKind,
    /// The detail after the value, e.g. `must have at most 500 items`; may be empty.
    pub message: String,
    /// The offending value; `None` when the apiserver omits it from the message.
    pub value: Option<Value>,
}

impl FieldError {
    fn new(path: &str, kind: FieldErrorKind, value: Option<Value>, message: String) -> Self {
        Self {
            field: schema::printed(path),
            kind,
            message,
            value,
        }
    }

    /// `field.Required`; an empty `path` means the object root.
    pub fn required(path: &str, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Required, None, detail.into())
    }

    /// `field.Invalid`.
    pub fn invalid(path: &str, value: Value, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Invalid, Some(value), detail.into())
    }

    /// `field.TypeInvalid`.
    pub fn type_invalid(path: &str, value: Value, detail: impl Into<String>) -> Self {
        Self::new(
            path,
            FieldErrorKind::TypeInvalid,
            Some(value),
            detail.into(),
        )
    }

    /// `field.NotSupported`: lists the supported values, each quoted.
    pub fn not_supported(path: &str, value: Value, supported: &[String]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| gofmt::quote(s)).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(path, FieldErrorKind::NotSupported, Some(value), detail)
    }

    /// `field.TooLongMaxLength`: `may not be longer than <max>`.
    pub fn too_long(path: &str, value: Value, max: u64) -> Self {
        Self::new(
            path,
            FieldErrorKind::TooLong,
            Some(value),
            format!("may not be longer than {max}"),
        )
    }

    /// `field.TooMany`: `<actual>: must have at most <max> items`.
    pub fn too_many(path: &str, actual: usize, max: u64) -> Self {
        Self::new(
            path,
            FieldErrorKind::TooMany,
            Some(json!(actual)),
            format!("must have at most {max} items"),
        )
    }

    /// `field.Forbidden`.
    pub fn forbidden(path: &str, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Forbidden, None, detail.into())
    }

    /// `field.Duplicate`.
    pub fn duplicate(path: &str, value: Value) -> Self {
        Self::new(path, FieldErrorKind::Duplicate, Some(value), String::new())
    }

    /// `field.InternalError`.
    pub fn internal(path: &str, detail: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Internal, None, detail.into())
    }

    /// The message without the field, as a `StatusCause.message` carries it
    /// (`field.Error.ErrorBody`), e.g. `Invalid value: 100: spec.x in body should be ...`.
    pub fn body(&self) -> String {
        use FieldErrorKind::*;
        let mut s = match (self.kind, &self.value) {
            (Required | Forbidden | TooLong | Internal, _) | (_, None) => {
                self.kind.as_str().to_owned()
            }
            (_, Some(v)) => format!("{}: {}", self.kind.as_str(), gofmt::bad_value(v)),
        };
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// The `Status` (HTTP 422, reason `Invalid`) the apiserver returns when admission rejects an
/// object: `details.causes` lists every error, and the message is
/// `<Kind>.<group> "<name>" is invalid: <errors>` with several errors bracketed and
/// comma-separated, identical messages printed once (as `field.ErrorList.ToAggregate` does).
pub fn invalid_status(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Value {
    let qualified = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let mut seen = HashSet::new();
    let lines: Vec<String> = errors
        .iter()
        .map(ToString::to_string)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    let message = match lines.len() {
        0 => format!("{qualified} {} is invalid", gofmt::quote(name)),
        1 => format!(
            "{qualified} {} is invalid: {}",
            gofmt::quote(name),
            lines[0]
        ),
        _ => format!(
            "{qualified} {} is invalid: [{}]",
            gofmt::quote(name),
            lines.join(", ")
        ),
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field}))
        .collect();
    let mut details = serde_json::Map::new();
    for (key, value) in [("name", name), ("group", group), ("kind", kind)] {
        if !value.is_empty() {
            details.insert(key.to_owned(), json!(value));
        }
    }
    if !causes.is_empty() {
        details.insert("causes".to_owned(), Value::Array(causes));
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": details,
        "code": 422,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimum_error() -> FieldError {
        FieldError::invalid(
            "spec.durationSeconds",
            json!(100),
            "spec.durationSeconds in body should be greater than or equal to 900",
        )
    }

    #[test]
    fn an_invalid_value_displays_field_value_and_detail() {
        assert_eq!(
            minimum_error().to_string(),
            "spec.durationSeconds: Invalid value: 100: spec.durationSeconds in body should be greater than or equal to 900"
        );
    }

    #[test]
    fn required_forbidden_and_too_long_omit_the_value() {
        assert_eq!(
            FieldError::required("spec.x", "").to_string(),
            "spec.x: Required value"
        );
        assert_eq!(
            FieldError::forbidden("spec.x", "nope").to_string(),
            "spec.x: Forbidden: nope"
        );
        assert_eq!(
            FieldError::too_long("spec.x", json!("aaaa"), 3).to_string(),
            "spec.x: Too long: may not be longer than 3"
        );
    }

    #[test]
    fn not_supported_and_too_many_print_like_the_apiserver() {
        let e = FieldError::not_supported("spec.x", json!("x"), &["a".into(), "b".into()]);
        assert_eq!(
            e.to_string(),
            r#"spec.x: Unsupported value: "x": supported values: "a", "b""#
        );
        assert_eq!(
            FieldError::too_many("spec.r", 501, 500).to_string(),
            "spec.r: Too many: 501: must have at most 500 items"
        );
    }

    #[test]
    fn every_kind_has_the_apiserver_reason_and_round_trips() {
        for kind in [
            FieldErrorKind::Required,
            FieldErrorKind::TypeInvalid,
            FieldErrorKind::TooMany,
        ] {
            assert_eq!(FieldErrorKind::from_reason(kind.reason()), Some(kind));
        }
        assert_eq!(
            FieldErrorKind::NotSupported.reason(),
            "FieldValueNotSupported"
        );
        assert_eq!(FieldErrorKind::TooLong.reason(), "FieldValueTooLong");
        assert_eq!(FieldErrorKind::from_reason("Nonsense"), None);
    }

    #[test]
    fn a_root_error_prints_nil_as_its_field() {
        assert_eq!(
            FieldError::required("", "").to_string(),
            "<nil>: Required value"
        );
    }

    #[test]
    fn the_invalid_status_for_one_error_has_no_brackets() {
        let status = invalid_status("VcsAuthToken", "patchbay.dev", "build", &[minimum_error()]);
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            "VcsAuthToken.patchbay.dev \"build\" is invalid: spec.durationSeconds: Invalid value: 100: \
             spec.durationSeconds in body should be greater than or equal to 900"
        );
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueInvalid"
        );
        assert_eq!(
            status["details"]["causes"][0]["field"],
            "spec.durationSeconds"
        );
        assert_eq!(status["details"]["name"], "build");
    }

    #[test]
    fn the_invalid_status_for_several_errors_brackets_them_once_each() {
        let req = FieldError::required("spec.connection", "");
        let errors = [req.clone(), minimum_error(), req];
        let status = invalid_status("VcsAuthToken", "patchbay.dev", "build", &errors);
        let message = status["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(
            "VcsAuthToken.patchbay.dev \"build\" is invalid: [spec.connection: Required value, "
        ));
        assert!(message.ends_with("equal to 900]"));
        assert_eq!(
            status["details"]["causes"].as_array().map(Vec::len),
            Some(3)
        );
        assert_eq!(status["details"]["causes"][0]["message"], "Required value");
    }

    #[test]
    fn a_core_kind_has_no_group_in_its_status() {
        let status = invalid_status("ConfigMap", "", "x", &[]);
        assert_eq!(status["message"], "ConfigMap \"x\" is invalid");
        assert!(status["details"].get("group").is_none());
    }
}
