//! Helpers shared by the integration tests; each test binary uses some of them.
#![allow(dead_code)]

pub mod chart;
pub mod cluster;
pub mod fleet;
pub mod github;

/// A child process (`patchbay run`, `patchbay sandbox`) killed when dropped, so a failing test
/// leaves no operator behind; with a log file, a failing test prints it.
pub struct KillOnDrop(pub std::process::Child, pub Option<std::path::PathBuf>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking()
            && let Some(log) = &self.1
        {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!("--- {}:\n{text}", log.display());
        }
    }
}

use patchbay::api::crd;
use serde_json::Value;
use testkit::admission::{self, FieldError};

/// The `openAPIV3Schema` of the CRD serving `kind`.
pub fn schema_for(kind: &str) -> Value {
    let (_, crd) = crd::all()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("patchbay serves no kind {kind}"));
    let schema = crd.spec.versions[0].schema.clone().unwrap();
    serde_json::to_value(schema.open_api_v3_schema.unwrap()).unwrap()
}

/// Runs a manifest through the admission an API server applies (pruning, defaults, schema,
/// CEL) and returns the admitted object or the field errors.
pub fn admit(manifest: &Value) -> Result<Value, Vec<FieldError>> {
    let kind = manifest["kind"].as_str().expect("manifest has a kind");
    let mut object = manifest.clone();
    admission::admit(&schema_for(kind), &mut object, None).map(|()| object)
}
