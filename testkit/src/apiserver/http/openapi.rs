//! OpenAPI v3 documents, enough for `kubectl explain` on custom resources: the root index
//! (`/openapi/v3`) and one document per group version, with each CRD version's
//! `openAPIV3Schema` under `components.schemas`.

use crate::apiserver::store::resources::{Registry, ResourceInfo};
use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The schema name the real server uses: reversed group, version, kind.
fn schema_name(ri: &ResourceInfo) -> String {
    let group: Vec<&str> = if ri.group.is_empty() {
        vec!["io", "k8s", "api", "core"]
    } else {
        ri.group.split('.').rev().collect()
    };
    format!("{}.{}.{}", group.join("."), ri.version, ri.kind)
}

fn schema(ri: &ResourceInfo) -> Value {
    let mut s = ri.schema.clone().unwrap_or_else(|| json!({"type": "object", "description": format!("{} is a built-in kind; its schema is not emulated.", ri.kind)}));
    if s.get("properties").is_some_and(Value::is_object) {
        let props = &mut s["properties"];
        for (k, d) in [
            (
                "apiVersion",
                "APIVersion defines the versioned schema of this representation of an object.",
            ),
            (
                "kind",
                "Kind is a string value representing the REST resource this object represents.",
            ),
        ] {
            if props.get(k).is_none() {
                props[k] = json!({"type": "string", "description": d});
            }
        }
        if props
            .get("metadata")
            .is_none_or(|m| m.get("properties").is_none())
        {
            props["metadata"] =
                json!({"type": "object", "description": "Standard object's metadata."});
        }
    }
    s["x-kubernetes-group-version-kind"] =
        json!([{"group": ri.group, "version": ri.version, "kind": ri.kind}]);
    s
}

/// One object path per resource, with the operations kubectl inspects: a PATCH carrying the
/// kind and the query parameters the server supports (kubectl checks for `fieldValidation`
/// before it trusts the server to validate).
fn paths(resources: &[std::sync::Arc<ResourceInfo>]) -> Value {
    let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let mut out = serde_json::Map::new();
    for r in resources {
        let prefix = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let ns = if r.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let schema_ref = json!({"$ref": format!("#/components/schemas/{}", schema_name(r))});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}});
        let op = |action: &str, params: Vec<Value>| json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": ok});
        let writes = || {
            ["dryRun", "fieldManager", "fieldValidation"]
                .map(param)
                .to_vec()
        };
        let mut patch_params = writes();
        patch_params.push(param("force"));
        out.insert(
            format!("{prefix}{ns}/{}/{{name}}", r.plural),
            json!({"get": op("get", vec![]), "put": op("put", writes()), "patch": op("patch", patch_params), "delete": op("delete", vec![])}),
        );
        out.insert(
            format!("{prefix}{ns}/{}", r.plural),
            json!({"get": op("list", vec![]), "post": op("post", writes())}),
        );
    }
    Value::Object(out)
}

/// `/openapi/v3/{api/v1 | apis/g/v}`, or None when not served.
pub fn group_version(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = reg.resources(group, version);
    if resources.is_empty() {
        return None;
    }
    let schemas: serde_json::Map<String, Value> = resources
        .iter()
        .map(|r| (schema_name(r), schema(r)))
        .collect();
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths(&resources),
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v3`: the index of group-version documents, each with a content hash.
pub fn root(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs = vec![(String::new(), "v1".to_string())];
    for g in reg.groups().iter().filter(|g| !g.is_empty()) {
        gvs.extend(reg.versions(g).into_iter().map(|v| (g.clone(), v)));
    }
    for (g, v) in gvs {
        let Some(doc) = group_version(reg, &g, &v) else {
            continue;
        };
        let mut h = DefaultHasher::new();
        doc.to_string().hash(&mut h);
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={:016X}", h.finish())}),
        );
    }
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_points_at_every_served_group_version() {
        let root = root(&Registry::with_builtins());
        assert!(
            root["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        assert!(root["paths"].get("apis/coordination.k8s.io/v1").is_some());
    }

    #[test]
    fn schemas_are_named_and_tagged_like_the_real_servers() {
        let doc = group_version(&Registry::with_builtins(), "coordination.k8s.io", "v1").unwrap();
        let s = &doc["components"]["schemas"]["io.k8s.coordination.v1.Lease"];
        assert_eq!(s["x-kubernetes-group-version-kind"][0]["kind"], "Lease");
        let patch = &doc["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]
            ["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Lease");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
    }
}
