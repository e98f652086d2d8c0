//! Test controls: request counters per verb and resource, and injected faults (a share of
//! writes failing with 409 or 500, added latency). Pure data; `server.rs` consults it per
//! request and `admin.rs` exposes it over HTTP.

use crate::apiserver::error::{ApiError, Subject};
use crate::apiserver::request::{ApiRequest, Method, Route};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Faults to inject. The default injects nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Share of writes (0.0 to 1.0) refused with 409 Conflict, as on a stale resourceVersion.
    pub conflict_rate: f64,
    /// Share of writes (0.0 to 1.0) failing with 500 InternalError.
    pub error_rate: f64,
    /// Latency added to every request, in milliseconds.
    pub latency_ms: u64,
    /// Only requests for this resource (as counters name it, e.g. `secrets`,
    /// `connections.patchbay.dev`); all when empty.
    pub resource: Option<String>,
}

/// What a request is, as counters and faults see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKind {
    /// get, list, watch, create, update, patch, apply, delete, deletecollection.
    pub verb: &'static str,
    /// `plural[.group][/subresource]`, e.g. `widgets.example.com/status`.
    pub resource: String,
}

impl RequestKind {
    /// Classifies a resource request; None for discovery and other paths.
    pub fn of(req: &ApiRequest) -> Option<Self> {
        let Route::Resource(p) = Route::parse(&req.path) else {
            return None;
        };
        let verb = match (req.method, p.name.is_some()) {
            (Method::Get, true) => "get",
            (Method::Get, false) if req.flag("watch") => "watch",
            (Method::Get, false) => "list",
            (Method::Post, _) => "create",
            (Method::Put, _) => "update",
            (Method::Patch, _) if req.content_type.starts_with("application/apply-patch") => {
                "apply"
            }
            (Method::Patch, _) => "patch",
            (Method::Delete, true) => "delete",
            (Method::Delete, false) => "deletecollection",
            (Method::Other, _) => return None,
        };
        let mut resource = p.plural.clone();
        if !p.group.is_empty() {
            resource = format!("{resource}.{}", p.group);
        }
        if let Some(sub) = &p.subresource {
            resource = format!("{resource}/{sub}");
        }
        Some(RequestKind { verb, resource })
    }

    fn is_write(&self) -> bool {
        matches!(
            self.verb,
            "create" | "update" | "patch" | "apply" | "delete" | "deletecollection"
        )
    }
}

impl Faults {
    fn applies_to(&self, kind: &RequestKind) -> bool {
        match self.resource.as_deref() {
            None | Some("") => true,
            Some(r) => kind.resource == r || kind.resource.split('/').next() == Some(r),
        }
    }

    /// Latency to add before handling the request.
    pub fn delay(&self, kind: &RequestKind) -> Duration {
        if self.applies_to(kind) {
            Duration::from_millis(self.latency_ms)
        } else {
            Duration::ZERO
        }
    }

    /// The injected failure for a request, given a uniform random `roll` in [0, 1).
    pub fn failure(&self, kind: &RequestKind, roll: f64) -> Option<ApiError> {
        if !kind.is_write() || !self.applies_to(kind) {
            return None;
        }
        let (plural, group) = kind
            .resource
            .split('/')
            .next()
            .map_or(("", ""), |r| r.split_once('.').unwrap_or((r, "")));
        let subject = Subject {
            group,
            resource: plural,
            name: "",
        };
        if roll < self.conflict_rate {
            Some(ApiError::stale(subject))
        } else if roll < self.conflict_rate + self.error_rate {
            Some(ApiError::internal(
                "injected fault: the emulator failed this request on purpose",
            ))
        } else {
            None
        }
    }
}

/// Requests served, per (verb, resource).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters(pub BTreeMap<RequestKind, u64>);

impl Counters {
    /// Counts one request.
    pub fn record(&mut self, kind: RequestKind) {
        *self.0.entry(kind).or_default() += 1;
    }

    /// The count for a verb on a resource (`plural[.group][/subresource]`).
    pub fn get(&self, verb: &str, resource: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| k.verb == verb && k.resource == resource)
            .map_or(0, |(_, n)| *n)
    }

    /// The total for a verb over all resources.
    pub fn total(&self, verb: &str) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.verb == verb)
            .map(|(_, n)| n)
            .sum()
    }

    /// As JSON rows `{verb, resource, count}`.
    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<_> = self
            .0
            .iter()
            .map(|(k, n)| serde_json::json!({"verb": k.verb, "resource": k.resource, "count": n}))
            .collect();
        serde_json::json!({ "counters": rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, query: &str) -> ApiRequest {
        ApiRequest::new(method, path, Some(query))
    }

    #[test]
    fn requests_are_classified_by_verb_and_qualified_resource() {
        let k = RequestKind::of(&req(
            Method::Get,
            "/apis/example.com/v1/namespaces/a/widgets",
            "watch=true",
        ))
        .unwrap();
        assert_eq!(
            (k.verb, k.resource.as_str()),
            ("watch", "widgets.example.com")
        );
        let mut apply = req(
            Method::Patch,
            "/apis/example.com/v1/namespaces/a/widgets/w/status",
            "",
        );
        apply.content_type = "application/apply-patch+yaml".into();
        let k = RequestKind::of(&apply).unwrap();
        assert_eq!(
            (k.verb, k.resource.as_str()),
            ("apply", "widgets.example.com/status")
        );
        assert!(RequestKind::of(&req(Method::Get, "/apis", "")).is_none());
    }

    #[test]
    fn injected_failures_hit_only_writes_on_the_chosen_resource_in_the_chosen_share() {
        let f = Faults {
            conflict_rate: 0.25,
            error_rate: 0.25,
            resource: Some("secrets".into()),
            ..Default::default()
        };
        let write = RequestKind {
            verb: "create",
            resource: "secrets".into(),
        };
        assert_eq!(f.failure(&write, 0.1).unwrap().code, 409);
        assert_eq!(f.failure(&write, 0.4).unwrap().code, 500);
        assert!(f.failure(&write, 0.6).is_none());
        assert!(
            f.failure(
                &RequestKind {
                    verb: "get",
                    resource: "secrets".into()
                },
                0.0
            )
            .is_none()
        );
        assert!(
            f.failure(
                &RequestKind {
                    verb: "create",
                    resource: "configmaps".into()
                },
                0.0
            )
            .is_none()
        );
    }

    #[test]
    fn counters_add_up_per_verb_and_resource() {
        let mut c = Counters::default();
        c.record(RequestKind {
            verb: "get",
            resource: "secrets".into(),
        });
        c.record(RequestKind {
            verb: "get",
            resource: "secrets".into(),
        });
        c.record(RequestKind {
            verb: "get",
            resource: "configmaps".into(),
        });
        assert_eq!(c.get("get", "secrets"), 2);
        assert_eq!(c.total("get"), 3);
        assert_eq!(c.to_json()["counters"].as_array().unwrap().len(), 2);
    }
}
