//! CustomResourceDefinitions: what a CRD serves, and the status the API server gives it.

use crate::apiserver::store::meta;
use crate::apiserver::store::resources::{GroupResource, PrinterColumn, ResourceInfo};
use serde_json::{Value, json};

/// The storage key of CRDs themselves.
pub fn crd_resource() -> GroupResource {
    GroupResource {
        group: "apiextensions.k8s.io".into(),
        resource: "customresourcedefinitions".into(),
    }
}

/// Whether a resource is the CRD resource.
pub fn is_crd(ri: &ResourceInfo) -> bool {
    ri.group == "apiextensions.k8s.io" && ri.plural == "customresourcedefinitions"
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The resources (one per CRD) whose objects the CRD owns.
pub fn served_resources(crd: &Value) -> Vec<GroupResource> {
    let (group, plural) = (s(crd, "/spec/group"), s(crd, "/spec/names/plural"));
    if group.is_empty() || plural.is_empty() {
        return Vec::new();
    }
    vec![GroupResource {
        group: group.into(),
        resource: plural.into(),
    }]
}

fn columns(version: &Value) -> Vec<PrinterColumn> {
    let declared = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array);
    match declared {
        Some(cols) => cols
            .iter()
            .map(|c| PrinterColumn {
                name: s(c, "/name").into(),
                type_: s(c, "/type").into(),
                json_path: s(c, "/jsonPath").into(),
                description: s(c, "/description").into(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            })
            .collect(),
        None => vec![PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            json_path: ".metadata.creationTimestamp".into(),
            description: String::new(),
            priority: 0,
        }],
    }
}

/// One [`ResourceInfo`] per served version.
pub fn resource_infos(crd: &Value) -> Vec<ResourceInfo> {
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind = s(crd, "/spec/names/kind");
    let singular = match s(crd, "/spec/names/singular") {
        "" => kind.to_lowercase(),
        x => x.to_string(),
    };
    versions
        .iter()
        .filter(|v| v.get("served") != Some(&json!(false)))
        .map(|v| ResourceInfo {
            group: s(crd, "/spec/group").into(),
            version: s(v, "/name").into(),
            kind: kind.into(),
            plural: s(crd, "/spec/names/plural").into(),
            singular: singular.clone(),
            namespaced: s(crd, "/spec/scope") == "Namespaced",
            short_names: strings(crd, "/spec/names/shortNames"),
            categories: strings(crd, "/spec/names/categories"),
            has_status: v.pointer("/subresources/status").is_some(),
            custom: true,
            tracks_generation: true,
            printer_columns: columns(v),
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
        })
        .collect()
}

/// The CRD with `NamesAccepted` and `Established` conditions, or `None` when it has them.
pub fn with_established_status(crd: &Value) -> Option<Value> {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    if established && crd.pointer("/status/acceptedNames") == Some(&names) {
        return None;
    }
    let now = meta::now();
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage") == Some(&json!(true)))
        .map(|v| v["name"].clone())
        .collect();
    let mut out = crd.clone();
    out["status"] = json!({
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": names,
        "storedVersions": stored,
    });
    Some(out)
}

/// A CRD with a served and an unserved version, for the unit tests of the CRD modules.
#[cfg(test)]
pub(super) fn test_crd() -> Value {
    json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": {"type": "object"}},
                 "additionalPrinterColumns": [{"name": "Ready", "type": "string", "jsonPath": ".status.ready"}]},
                {"name": "v1beta1", "served": false, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object"}}}
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crd_serves_each_served_version_with_its_names_and_subresources() {
        let infos = resource_infos(&test_crd());
        assert_eq!(infos.len(), 1);
        let i = &infos[0];
        assert_eq!(
            (
                i.kind.as_str(),
                i.singular.as_str(),
                i.namespaced,
                i.has_status
            ),
            ("Widget", "widget", true, true)
        );
        assert_eq!(i.short_names, vec!["wd"]);
        assert_eq!(i.printer_columns[0].name, "Ready");
    }

    #[test]
    fn establishing_happens_once() {
        let established = with_established_status(&test_crd()).unwrap();
        assert_eq!(
            established["status"]["conditions"][1]["type"],
            "Established"
        );
        assert_eq!(established["status"]["storedVersions"], json!(["v1"]));
        assert!(with_established_status(&established).is_none());
    }
}
