//! The CustomResourceDefinitions of the API, as `patchbay crd` prints them and `crds/` holds.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{Connection, VcsAuthToken};

/// The command that rewrites `crds/` from the code.
pub const REGENERATE: &str = "cargo run -- crd --out-dir crds --out-dir charts/patchbay/files/crds";

/// Every CRD patchbay serves, with the file name it is committed under in `crds/`.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("connection.yaml", Connection::crd()),
        ("vcsauthtoken.yaml", VcsAuthToken::crd()),
    ]
}

/// Every CRD rendered as the YAML document committed in `crds/`, keyed by file name.
pub fn render_all() -> Vec<(&'static str, String)> {
    all()
        .into_iter()
        .map(|(file, crd)| {
            let yaml = serde_saphyr::to_string(&crd)
                .unwrap_or_else(|e| panic!("CRD {file} does not serialise to YAML: {e}"));
            (file, yaml)
        })
        .collect()
}

/// All CRDs as one multi-document YAML stream, as `patchbay crd` prints it.
pub fn render_stream() -> String {
    render_all()
        .into_iter()
        .map(|(_, yaml)| format!("---\n{yaml}"))
        .collect()
}

/// The files in `dir` that are missing or differ from what the code generates.
pub fn stale_files(dir: &Path) -> Vec<String> {
    render_all()
        .into_iter()
        .filter(|(file, yaml)| {
            std::fs::read_to_string(dir.join(file)).ok().as_deref() != Some(yaml)
        })
        .map(|(file, _)| file.to_string())
        .collect()
}

/// Writes every CRD into `dir`, one file each.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (file, yaml) in render_all() {
        std::fs::write(dir.join(file), yaml)?;
    }
    Ok(())
}
