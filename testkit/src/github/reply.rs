//! A response before it becomes an HTTP response: status, optional JSON body, extra headers.

use serde_json::{Value, json};

/// Where GitHub's error bodies point; clients only display it.
pub(crate) const DOCS_URL: &str = "https://docs.github.com/rest";

/// A simulated response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A JSON body with this status.
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    /// GitHub's error shape: `{"message", "documentation_url", "status"}`.
    pub(crate) fn error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            json!({"message": message, "documentation_url": DOCS_URL, "status": status.to_string()}),
        )
    }

    /// No body (`204 No Content`).
    pub(crate) fn empty(status: u16) -> Self {
        Self {
            status,
            body: None,
            headers: Vec::new(),
        }
    }

    /// `404 {"message":"Not Found"}`, GitHub's answer for anything hidden or absent.
    pub(crate) fn not_found() -> Self {
        Self::error(404, "Not Found")
    }

    /// `401 {"message":"Bad credentials"}`, for unknown, expired or revoked tokens.
    pub(crate) fn bad_credentials() -> Self {
        Self::error(401, "Bad credentials")
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The value of a header this reply sets, if any.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
