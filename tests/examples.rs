//! Every manifest under `examples/` parses into patchbay's Rust types (or Kubernetes' own) and
//! passes the schema and CEL admission an API server applies.

mod support;

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use patchbay::api::{Connection, ConnectionKind, VcsAuthToken};
use serde_json::Value;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn examples() -> Vec<(PathBuf, Value)> {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let mut files = Vec::new();
    yaml_files(root, &mut files);
    files.sort();
    files
        .into_iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            docs.into_iter()
                .filter(|d| !d.is_null())
                .map(move |d| (path.clone(), d))
        })
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, doc: &Value) -> T {
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "{}: {} does not parse: {e}",
            path.display(),
            doc["metadata"]["name"]
        )
    })
}

#[test]
fn every_example_parses_and_passes_admission() {
    let docs = examples();
    assert!(!docs.is_empty());
    for (path, doc) in &docs {
        match doc["kind"].as_str() {
            Some("Connection") => {
                let c: Connection = parse(path, doc);
                assert!(
                    c.spec.kind().is_some(),
                    "{}: no single provider",
                    path.display()
                );
            }
            Some("VcsAuthToken") => {
                let _: VcsAuthToken = parse(path, doc);
            }
            Some("Secret") => {
                let _: Secret = parse(path, doc);
            }
            Some("Namespace") => {
                let _: Namespace = parse(path, doc);
            }
            Some("Pod") => {
                let _: Pod = parse(path, doc);
            }
            _ => continue,
        }
        if matches!(doc["kind"].as_str(), Some("Connection" | "VcsAuthToken"))
            && let Err(errors) = support::admit(doc)
        {
            panic!("{}: refused: {errors:?}", path.display());
        }
    }
}

#[test]
fn there_is_one_connection_example_per_kind() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/connections"));
    for kind in ConnectionKind::ALL {
        let mut file = String::new();
        for c in kind.field_name().chars() {
            if c.is_ascii_uppercase() {
                file.push('-');
            }
            file.push(c.to_ascii_lowercase());
        }
        let file = file.replace("o-auth", "oauth").replace("dev-ops", "devops");
        let path = dir.join(format!("{file}.yaml"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("no example for {kind} at {}", path.display()));
        let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
        let has_kind = docs.iter().filter(|d| d["kind"] == "Connection").any(|d| {
            serde_json::from_value::<Connection>(d.clone())
                .is_ok_and(|c| c.spec.kind() == Some(kind))
        });
        assert!(has_kind, "{} holds no {kind} Connection", path.display());
    }
}

#[test]
fn every_secret_a_connection_example_references_is_in_the_same_file() {
    let docs = examples();
    // (file, kind, namespace, name) of every Secret and ConfigMap.
    let secrets: Vec<(PathBuf, String, String, String)> = docs
        .iter()
        .filter(|(_, d)| d["kind"] == "Secret" || d["kind"] == "ConfigMap")
        .map(|(p, d)| {
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            let ns = d["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let kind = d["kind"].as_str().unwrap().to_string();
            (p.clone(), kind, ns, name)
        })
        .collect();
    for (path, doc) in docs.iter().filter(|(p, d)| {
        d["kind"] == "Connection" && p.parent().is_some_and(|d| d.ends_with("connections"))
    }) {
        let ns = doc["metadata"]["namespace"].as_str().unwrap();
        let mut refs = Vec::new();
        collect_secret_refs(&doc["spec"], &mut refs);
        for (kind, name) in refs {
            assert!(
                secrets
                    .iter()
                    .any(|(p, k, n, s)| p == path && *k == kind && n == ns && *s == name),
                "{}: {kind} {ns}/{name} is referenced but not defined in the file",
                path.display()
            );
        }
    }
}

/// Collects the `name` of every `{name, key}` object below `value`.
/// Every `{name, key}` reference under `value`, as (kind, name): a ConfigMap's under a
/// `configMap` field (`spec.caBundle.configMap`), a Secret's anywhere else.
fn collect_secret_refs(value: &Value, out: &mut Vec<(String, String)>) {
    collect_refs(value, "Secret", out)
}

fn collect_refs(value: &Value, kind: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if map.len() == 2
                && let (Some(Value::String(name)), Some(Value::String(_))) =
                    (map.get("name"), map.get("key"))
            {
                out.push((kind.to_string(), name.clone()));
                return;
            }
            for (field, v) in map {
                let kind = if field == "configMap" {
                    "ConfigMap"
                } else {
                    kind
                };
                collect_refs(v, kind, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, kind, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_api_server_accepts_every_example() {
    // The example tree becomes this test's namespaces (`ci` → `<id>-ci`, ...); every other
    // manifest is created with dryRun=All there, so the server admits it and stores nothing.
    let cluster = support::cluster::Cluster::start().await;
    let docs = examples();
    for (_, doc) in docs.iter().filter(|(_, d)| d["kind"] == "Namespace") {
        cluster.apply(doc.clone()).await;
    }
    // Namespaces that examples use without defining them (argocd, flux-system).
    for (_, doc) in &docs {
        if let Some(ns) = doc["metadata"]["namespace"].as_str()
            && !docs
                .iter()
                .any(|(_, d)| d["kind"] == "Namespace" && d["metadata"]["name"] == ns)
        {
            cluster.namespace(ns, None).await;
        }
    }
    let mut refused = Vec::new();
    // Argo CD's and Flux's own kinds need their CRDs, which this server does not have.
    // The emulator serves no RBAC kinds (it enforces no RBAC either).
    let real = cluster.server.is_real();
    let served = |d: &Value| {
        let group = d["apiVersion"].as_str().unwrap_or_default();
        !(group.contains("argoproj.io")
            || group.contains("fluxcd.io")
            || (!real && group.starts_with("rbac.authorization.k8s.io")))
    };
    for (path, doc) in docs
        .iter()
        .filter(|(_, d)| d["kind"] != "Namespace" && served(d))
    {
        let mut doc = doc.clone();
        if let Some(ns) = doc["metadata"]["namespace"].as_str() {
            doc["metadata"]["namespace"] = serde_json::json!(cluster.ns(ns));
        }
        if let Err(e) = support::cluster::apply_dry_run(&cluster.client, &doc).await {
            refused.push(format!(
                "{}: {} {}: {e}",
                path.display(),
                doc["kind"],
                doc["metadata"]["name"]
            ));
        }
    }
    assert!(
        refused.is_empty(),
        "{} refused:\n{}",
        cluster.server.describe(),
        refused.join("\n")
    );
    cluster.stop().await;
}
