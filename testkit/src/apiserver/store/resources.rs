//! The served resource types: the built-in kinds and those that CRDs add.
//!
//! A [`ResourceInfo`] describes one (group, version, resource) as discovery shows it. Objects are
//! stored per [`GroupResource`], independent of the version they are served at.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A resource independent of its version: the storage key for its objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

/// One additional printer column (from a CRD, or the built-in table layouts).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub type_: String,
    /// Simple JSONPath, e.g. `.status.conditions[?(@.type=="Ready")].status`.
    pub json_path: String,
    /// Column description.
    pub description: String,
    /// 0 shows by default; higher only with `-o wide`.
    pub priority: i64,
}

/// One served (group, version, resource).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    /// API group, empty for core.
    pub group: String,
    /// Served version.
    pub version: String,
    /// Kind, e.g. `ConfigMap`.
    pub kind: String,
    /// Plural, e.g. `configmaps`.
    pub plural: String,
    /// Singular, e.g. `configmap`.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for kubectl (`cm`).
    pub short_names: Vec<String>,
    /// Categories for kubectl (`kubectl get all`).
    pub categories: Vec<String>,
    /// Whether a `/status` subresource isolates status from the main resource.
    pub has_status: bool,
    /// Whether the type is served from a CustomResourceDefinition.
    pub custom: bool,
    /// Whether `metadata.generation` is tracked (custom objects and CRDs).
    pub tracks_generation: bool,
    /// Table columns after `Name`.
    pub printer_columns: Vec<PrinterColumn>,
    /// The CRD's `openAPIV3Schema` for this version, if any.
    pub schema: Option<Value>,
}

impl ResourceInfo {
    /// The `apiVersion` string: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key for this resource's objects.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            resource: self.plural.clone(),
        }
    }

    /// The kind of lists, e.g. `ConfigMapList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

fn col(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        json_path: json_path.into(),
        description: String::new(),
        priority: 0,
    }
}

fn age() -> PrinterColumn {
    col("Age", "date", ".metadata.creationTimestamp")
}

struct Builtin {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    columns: fn() -> Vec<PrinterColumn>,
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
        short: &["ns"],
        categories: &[],
        status: true,
        columns: || vec![col("Status", "string", ".status.phase"), age()],
    },
    Builtin {
        group: "",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
        short: &["po"],
        categories: &["all"],
        status: true,
        columns: || {
            vec![
                col("Ready", "ready", ".spec.containers"),
                col("Status", "string", ".status.phase"),
                col(
                    "Restarts",
                    "restarts",
                    ".status.containerStatuses[*].restartCount",
                ),
                age(),
            ]
        },
    },
    Builtin {
        group: "",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        columns: || {
            vec![
                col("Type", "string", ".type"),
                col("Data", "count", ".data"),
                age(),
            ]
        },
    },
    Builtin {
        group: "",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        short: &["cm"],
        categories: &[],
        status: false,
        columns: || vec![col("Data", "count", ".data"), age()],
    },
    Builtin {
        group: "",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
        short: &["sa"],
        categories: &[],
        status: false,
        columns: || vec![col("Secrets", "count", ".secrets"), age()],
    },
    Builtin {
        group: "",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short: &["ev"],
        categories: &[],
        status: false,
        columns: || {
            vec![
                col("Type", "string", ".type"),
                col("Reason", "string", ".reason"),
                col("Object", "string", ".involvedObject.name"),
                col("Message", "string", ".message"),
            ]
        },
    },
    Builtin {
        group: "events.k8s.io",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short: &["ev"],
        categories: &[],
        status: false,
        columns: || {
            vec![
                col("Type", "string", ".type"),
                col("Reason", "string", ".reason"),
                col("Object", "string", ".regarding.name"),
                col("Note", "string", ".note"),
            ]
        },
    },
    Builtin {
        group: "coordination.k8s.io",
        kind: "Lease",
        plural: "leases",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        columns: || vec![col("Holder", "string", ".spec.holderIdentity"), age()],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        namespaced: false,
        short: &["crd", "crds"],
        categories: &[],
        status: true,
        columns: || vec![col("Created At", "string", ".metadata.creationTimestamp")],
    },
];

/// All served resources, looked up by (group, version, plural) and by short name or kind.
#[derive(Debug, Default)]
pub struct Registry {
    by_gvr: BTreeMap<(String, String, String), Arc<ResourceInfo>>,
    /// Group names in discovery order (core first, then built-ins, then CRD groups).
    group_order: Vec<String>,
}

impl Registry {
    /// A registry with the built-in kinds.
    pub fn with_builtins() -> Self {
        let mut r = Registry::default();
        for b in BUILTINS {
            r.insert(ResourceInfo {
                group: b.group.into(),
                version: "v1".into(),
                kind: b.kind.into(),
                plural: b.plural.into(),
                singular: b.kind.to_lowercase(),
                namespaced: b.namespaced,
                short_names: b.short.iter().map(|s| s.to_string()).collect(),
                categories: b.categories.iter().map(|s| s.to_string()).collect(),
                has_status: b.status,
                custom: false,
                tracks_generation: matches!(b.kind, "CustomResourceDefinition" | "Pod"),
                printer_columns: (b.columns)(),
                schema: None,
            });
        }
        r
    }

    /// Adds or replaces one served version of a resource.
    pub fn insert(&mut self, info: ResourceInfo) {
        if !self.group_order.contains(&info.group) {
            self.group_order.push(info.group.clone());
        }
        let key = (
            info.group.clone(),
            info.version.clone(),
            info.plural.clone(),
        );
        self.by_gvr.insert(key, Arc::new(info));
    }

    /// Stops serving every version of a resource.
    pub fn remove_resource(&mut self, gr: &GroupResource) {
        self.by_gvr
            .retain(|(g, _, p), _| !(g == &gr.group && p == &gr.resource));
        let groups: Vec<String> = self.by_gvr.keys().map(|(g, _, _)| g.clone()).collect();
        self.group_order.retain(|g| groups.contains(g));
    }

    /// Looks up a served (group, version, plural).
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Any served version of a resource (the first by version priority).
    pub fn any_version(&self, gr: &GroupResource) -> Option<Arc<ResourceInfo>> {
        self.versions(&gr.group)
            .into_iter()
            .find_map(|v| self.get(&gr.group, &v, &gr.resource))
    }

    /// Groups in discovery order.
    pub fn groups(&self) -> &[String] {
        &self.group_order
    }

    /// Served versions of a group, most preferred first.
    pub fn versions(&self, group: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_gvr
            .keys()
            .filter(|(g, _, _)| g == group)
            .map(|(_, v, _)| v.clone())
            .collect();
        v.dedup();
        v.sort_by_key(|s| std::cmp::Reverse(version_priority(s)));
        v.dedup();
        v
    }

    /// Resources served in a group version.
    pub fn resources(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.by_gvr
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The resource serving `kind` at `apiVersion` (`v1` or `group/version`).
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.resources(group, version)
            .into_iter()
            .find(|r| r.kind == kind)
    }
}

/// Kubernetes version ordering: GA above beta above alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major: u32 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let minor = |t: &str| t.parse::<u32>().unwrap_or(0);
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(b) = tail.strip_prefix("beta") {
        (2, major, minor(b))
    } else if let Some(a) = tail.strip_prefix("alpha") {
        (1, major, minor(a))
    } else {
        (0, major, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_served_under_their_groups() {
        let r = Registry::with_builtins();
        assert!(r.get("", "v1", "configmaps").is_some());
        assert!(r.get("coordination.k8s.io", "v1", "leases").is_some());
        assert!(r.get("events.k8s.io", "v1", "events").is_some());
        assert_eq!(
            r.for_kind("coordination.k8s.io/v1", "Lease")
                .unwrap()
                .plural,
            "leases"
        );
        assert_eq!(r.for_kind("v1", "Secret").unwrap().plural, "secrets");
        assert!(r.get("", "v1", "leases").is_none());
        assert_eq!(r.groups()[0], "");
    }

    #[test]
    fn ga_versions_are_preferred_over_beta_and_alpha() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1"];
        v.sort_by_key(|s| std::cmp::Reverse(version_priority(s)));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1alpha1"]);
    }

    #[test]
    fn removing_a_resource_drops_its_group_when_nothing_else_is_served_there() {
        let mut r = Registry::with_builtins();
        r.remove_resource(&GroupResource {
            group: "coordination.k8s.io".into(),
            resource: "leases".into(),
        });
        assert!(!r.groups().iter().any(|g| g == "coordination.k8s.io"));
    }
}
