//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}`.
//!
//! Both formats: the legacy documents, and aggregated discovery (`apidiscovery.k8s.io/v2`, all
//! groups in one `/apis` response) for clients that ask for it in `Accept` (kubectl, kube's
//! `Discovery::run_aggregated`).

use crate::apiserver::store::resources::{Registry, ResourceInfo};
use serde_json::{Value, json};

/// The Kubernetes version the emulator claims to be.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-patchbay.emulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_version(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// `/apis/{group}`, or `None` when nothing is served in the group.
pub fn group(reg: &Registry, name: &str) -> Option<Value> {
    let versions = reg.versions(name);
    let preferred = versions.first()?;
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": versions.iter().map(|v| group_version(name, v)).collect::<Vec<_>>(),
        "preferredVersion": group_version(name, preferred),
    }))
}

/// `/apis`
pub fn groups(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .filter(|g| !g.is_empty())
        .filter_map(|g| group(reg, g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_entries(r: &ResourceInfo) -> Vec<Value> {
    let mut main = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": VERBS,
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = json!(r.categories);
    }
    let mut out = vec![main];
    if r.has_status {
        out.push(json!({
            "name": format!("{}/status", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    out
}

/// `/api/v1` or `/apis/{group}/{version}`, or `None` when not served.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = reg.resources(group, version);
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let entries: Vec<Value> = resources.iter().flat_map(|r| resource_entries(r)).collect();
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}),
    )
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let mut v = json!({
        "resource": r.plural,
        "responseKind": kind,
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": VERBS,
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if r.has_status {
        v["subresources"] = json!([{"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}]);
    }
    v
}

/// Aggregated discovery: the core group (`/api`) or every other group (`/apis`).
pub fn aggregated(reg: &Registry, core: bool) -> Value {
    let groups: Vec<&String> = reg
        .groups()
        .iter()
        .filter(|g| g.is_empty() == core)
        .collect();
    let items: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = reg
                .versions(g)
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = reg
                        .resources(g, v)
                        .iter()
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// `/`: the list of served paths.
pub fn root_paths(reg: &Registry) -> Value {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
    ];
    for g in reg.groups().iter().filter(|g| !g.is_empty()) {
        paths.push(format!("/apis/{g}"));
        for v in reg.versions(g) {
            paths.push(format!("/apis/{g}/{v}"));
        }
    }
    paths.extend(["/healthz", "/openapi/v3", "/version"].map(String::from));
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_group_is_not_listed_under_apis() {
        let g = groups(&Registry::with_builtins());
        let names: Vec<&str> = g["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"coordination.k8s.io"));
        assert!(!names.contains(&""));
    }

    #[test]
    fn aggregated_discovery_splits_core_from_the_other_groups() {
        let reg = Registry::with_builtins();
        let core = aggregated(&reg, true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        let ns = &core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "namespaces")
            .cloned()
            .unwrap();
        assert_eq!(
            (
                ns["scope"].as_str(),
                ns["subresources"][0]["subresource"].as_str()
            ),
            (Some("Cluster"), Some("status"))
        );
        let rest = aggregated(&reg, false);
        assert!(
            rest["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| g["metadata"]["name"] != "")
        );
    }

    #[test]
    fn resources_with_status_list_their_status_subresource() {
        let l = resource_list(&Registry::with_builtins(), "", "v1").unwrap();
        let names: Vec<&str> = l["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"namespaces/status"));
        assert!(!names.contains(&"configmaps/status"));
        assert!(resource_list(&Registry::with_builtins(), "nope.io", "v1").is_none());
    }
}
