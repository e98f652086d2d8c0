//! Requests as the emulator sees them, independent of the HTTP library: method, routed path,
//! query parameters and headers.

use crate::apiserver::error::{ApiError, ApiResult, Cause, Subject};
use bytes::Bytes;
use std::collections::HashMap;

/// HTTP verbs the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET: get, list, watch.
    Get,
    /// POST: create.
    Post,
    /// PUT: update.
    Put,
    /// PATCH: patch and server-side apply.
    Patch,
    /// DELETE: delete, deletecollection.
    Delete,
    /// Anything else.
    Other,
}

impl Method {
    /// From an HTTP method name.
    pub fn parse(m: &str) -> Self {
        match m {
            "GET" | "HEAD" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }
}

/// One API request.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The verb.
    pub method: Method,
    /// The URL path.
    pub path: String,
    /// Decoded query parameters (last value wins).
    pub query: HashMap<String, String>,
    /// `Content-Type`.
    pub content_type: String,
    /// `Accept`.
    pub accept: String,
    /// `User-Agent`, for the default field manager.
    pub user_agent: String,
    /// The body.
    pub body: Bytes,
}

impl ApiRequest {
    /// Builds a request from its parts, decoding the query string.
    pub fn new(method: Method, path: &str, query: Option<&str>) -> Self {
        let query = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        ApiRequest {
            method,
            path: path.to_string(),
            query,
            content_type: String::new(),
            accept: String::new(),
            user_agent: String::new(),
            body: Bytes::new(),
        }
    }

    /// A query parameter, if present and non-empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A boolean query parameter (`true` or `1`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    /// The field manager: `fieldManager`, or the user agent's program name as the real server does.
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.param("fieldManager") {
            return m.to_string();
        }
        match self.user_agent.split('/').next().unwrap_or("") {
            "" => "unknown".to_string(),
            ua => ua.to_string(),
        }
    }

    /// Whether the client asked for a `Table` rendering.
    pub fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }

    /// Whether the client asked for metadata only (`PartialObjectMetadata[List]`).
    pub fn wants_metadata(&self) -> bool {
        !self.wants_table() && self.accept.contains("as=PartialObjectMetadata")
    }
}

/// The request's `fieldValidation` directive: what to do with fields the schema does not
/// know. kubectl sends `Strict` by default; the server's default is `Warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop unknown fields (the real server also returns a Warning header).
    #[default]
    Warn,
    /// Refuse the request when it carries unknown or duplicate fields (400 BadRequest,
    /// `strict decoding error: unknown field "spec.x"`).
    Strict,
}

impl FieldValidation {
    /// From the `fieldValidation` query parameter of a write whose options are `options`
    /// (`CreateOptions`, `UpdateOptions`, `PatchOptions`): an unknown value is a 422 Invalid
    /// about those options, as on the real server.
    pub fn from_param(p: Option<&str>, options: &str) -> ApiResult<Self> {
        match p {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => {
                let cause = Cause {
                    reason: "FieldValueNotSupported",
                    field: "fieldValidation".into(),
                    message: format!(
                        "Unsupported value: {other:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                    ),
                };
                let subject = Subject {
                    group: "meta.k8s.io",
                    resource: "",
                    name: "",
                };
                Err(ApiError::invalid_causes(options, subject, &[cause]))
            }
        }
    }
}

/// A routed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`
    Root,
    /// `/version`
    Version,
    /// `/healthz`, `/readyz`, `/livez`
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1`, `/apis/{group}/{version}`
    GroupVersion(String, String),
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiV3Root,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`
    OpenApiV3(String, String),
    /// A resource path.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

/// `/{prefix}/{namespaces/ns/}?{plural}/{name}?/{subresource}?`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource.
    pub plural: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub subresource: Option<String>,
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let mk = |ns: Option<&str>, r: &[&str]| {
        if r.is_empty() || r.len() > 3 {
            return Route::Unknown;
        }
        Route::Resource(ResourcePath {
            group: group.into(),
            version: version.into(),
            plural: r[0].into(),
            namespace: ns.map(String::from),
            name: r.get(1).map(|s| s.to_string()),
            subresource: r.get(2).map(|s| s.to_string()),
        })
    };
    match rest {
        ["namespaces", ns, r @ ..]
            if !(r.is_empty() || r.len() == 1 && matches!(r[0], "status" | "finalize")) =>
        {
            mk(Some(ns), r)
        }
        r => mk(None, r),
    }
}

impl Route {
    /// Routes a URL path.
    pub fn parse(path: &str) -> Route {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segs.as_slice() {
            [] => Route::Root,
            ["version"] => Route::Version,
            ["healthz" | "readyz" | "livez", ..] => Route::Health,
            ["api"] => Route::CoreVersions,
            ["api", v] => Route::GroupVersion(String::new(), v.to_string()),
            ["api", v, rest @ ..] => resource("", v, rest),
            ["apis"] => Route::Groups,
            ["apis", g] => Route::Group(g.to_string()),
            ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
            ["apis", g, v, rest @ ..] => resource(g, v, rest),
            ["openapi", "v2"] => Route::OpenApiV2,
            ["openapi", "v3"] => Route::OpenApiV3Root,
            ["openapi", "v3", "api", v] => Route::OpenApiV3(String::new(), v.to_string()),
            ["openapi", "v3", "apis", g, v] => Route::OpenApiV3(g.to_string(), v.to_string()),
            _ => Route::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(p: &str) -> ResourcePath {
        match Route::parse(p) {
            Route::Resource(r) => r,
            other => panic!("{p} routed to {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths_are_told_apart() {
        let r = res("/api/v1/namespaces/a/configmaps/x");
        assert_eq!(
            (r.namespace.as_deref(), r.plural.as_str(), r.name.as_deref()),
            (Some("a"), "configmaps", Some("x"))
        );
        let r = res("/apis/patchbay.dev/v1alpha1/namespaces/a/connections/c/status");
        assert_eq!(
            (r.group.as_str(), r.subresource.as_deref()),
            ("patchbay.dev", Some("status"))
        );
        let r = res("/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
        assert_eq!((r.namespace, r.name), (None, None));
    }

    #[test]
    fn namespace_objects_and_their_status_are_not_mistaken_for_namespaced_collections() {
        let r = res("/api/v1/namespaces/team-a");
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref()),
            ("namespaces", Some("team-a"))
        );
        let r = res("/api/v1/namespaces/team-a/status");
        assert_eq!(
            (r.name.as_deref(), r.subresource.as_deref()),
            (Some("team-a"), Some("status"))
        );
        let r = res("/api/v1/namespaces/team-a/secrets");
        assert_eq!(
            (r.namespace.as_deref(), r.plural.as_str()),
            (Some("team-a"), "secrets")
        );
    }

    #[test]
    fn discovery_paths_are_routed() {
        assert_eq!(
            Route::parse("/apis/patchbay.dev"),
            Route::Group("patchbay.dev".into())
        );
        assert_eq!(
            Route::parse("/api/v1"),
            Route::GroupVersion(String::new(), "v1".into())
        );
        assert_eq!(
            Route::parse("/openapi/v3/apis/a.b/v1"),
            Route::OpenApiV3("a.b".into(), "v1".into())
        );
        assert_eq!(Route::parse("/nope/x"), Route::Unknown);
    }

    #[test]
    fn the_field_manager_defaults_to_the_user_agent_program() {
        let mut r = ApiRequest::new(Method::Patch, "/", Some("a=1&fieldManager="));
        r.user_agent = "kubectl/v1.32.0 (linux/amd64)".into();
        assert_eq!(r.field_manager(), "kubectl");
        let r = ApiRequest::new(Method::Patch, "/", Some("fieldManager=me&force=true"));
        assert_eq!(r.field_manager(), "me");
        assert!(r.flag("force"));
    }

    #[test]
    fn the_field_validation_directive_defaults_to_warn_and_rejects_unknown_values() {
        assert_eq!(
            FieldValidation::from_param(None, "CreateOptions").unwrap(),
            FieldValidation::Warn
        );
        assert_eq!(
            FieldValidation::from_param(Some("Strict"), "CreateOptions").unwrap(),
            FieldValidation::Strict
        );
        let e = FieldValidation::from_param(Some("strict"), "PatchOptions").unwrap_err();
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(
            e.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
        );
    }
}
