//! The sandbox behind `patchbay sandbox`: a Kubernetes API emulator for a new user with no
//! cluster. It writes a kubeconfig, installs manifests (CRDs, example namespaces), prints what
//! to type next, and runs until SIGINT or SIGTERM.
//!
//! The binary wires it; the controller and provider simulators plug in between
//! [`Sandbox::start`] and [`wait_for_signal`], using [`Sandbox::client`]:
//!
//! ```no_run
//! # async fn run() -> Result<(), testkit::sandbox::SandboxError> {
//! use testkit::sandbox::{Sandbox, SandboxOptions, wait_for_signal};
//! let sandbox = Sandbox::start(SandboxOptions { manifests: vec!["crds".into()], ..Default::default() }).await?;
//! println!("{}", sandbox.banner());
//! // spawn the controller with sandbox.client() here
//! wait_for_signal().await;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

use crate::apiserver::error::ApiError;
use crate::apiserver::{Emulator, EmulatorOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// How to start a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Where the kubeconfig is written (default `.sandbox/kubeconfig`).
    pub kubeconfig: PathBuf,
    /// YAML/JSON files or directories (their `*.yaml`, `*.yml`, `*.json`, sorted) applied in
    /// order; objects that exist already are left alone.
    pub manifests: Vec<PathBuf>,
    /// Commands suggested in the banner, after `export KUBECONFIG=...`.
    pub hints: Vec<String>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            kubeconfig: PathBuf::from(".sandbox/kubeconfig"),
            manifests: Vec::new(),
            hints: vec!["kubectl get namespaces".into()],
            port: 0,
        }
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The emulator could not listen.
    #[error("starting the emulator: {cause}")]
    Start {
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {cause}")]
    Io {
        /// What was being done (`reading`, `writing the kubeconfig to`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A manifest is not valid YAML or JSON.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The emulator refused an object from a manifest.
    #[error("installing {object} from {path}: {cause}")]
    Install {
        /// The file.
        path: PathBuf,
        /// `kind/name`.
        object: String,
        /// The API error.
        cause: Box<ApiError>,
    },
}

/// A running sandbox.
pub struct Sandbox {
    emulator: Emulator,
    kubeconfig: PathBuf,
    installed: Vec<String>,
    hints: Vec<String>,
}

fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let io = |cause| SandboxError::Io {
        action: "reading",
        path: path.to_path_buf(),
        cause,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The objects in a (multi-document) manifest, with `kind: List` expanded.
pub fn parse_manifest(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for doc in docs.into_iter().filter(Value::is_object) {
        match (
            doc.get("kind").and_then(Value::as_str),
            doc.get("items").and_then(Value::as_array),
        ) {
            (Some("List"), Some(items)) => out.extend(items.iter().cloned()),
            _ => out.push(doc),
        }
    }
    Ok(out)
}

impl Sandbox {
    /// Starts the emulator, writes the kubeconfig and installs the manifests.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let emulator = Emulator::start(EmulatorOptions {
            port: opts.port,
            ..Default::default()
        })
        .await
        .map_err(|cause| SandboxError::Start { cause })?;
        emulator
            .write_kubeconfig(&opts.kubeconfig)
            .map_err(|cause| SandboxError::Io {
                action: "writing the kubeconfig to",
                path: opts.kubeconfig.clone(),
                cause,
            })?;
        let mut installed = Vec::new();
        for path in &opts.manifests {
            for file in manifest_files(path)? {
                let text = std::fs::read_to_string(&file).map_err(|cause| SandboxError::Io {
                    action: "reading",
                    path: file.clone(),
                    cause,
                })?;
                let objects = parse_manifest(&text).map_err(|message| SandboxError::Parse {
                    path: file.clone(),
                    message,
                })?;
                for obj in objects {
                    let kind = obj
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let name = obj
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    match emulator.create_object(obj) {
                        Ok(_) => installed.push(format!("{kind}/{name}")),
                        Err(e) if e.reason == "AlreadyExists" => {}
                        Err(cause) => {
                            return Err(SandboxError::Install {
                                path: file.clone(),
                                object: format!("{kind}/{name}"),
                                cause: Box::new(cause),
                            });
                        }
                    }
                }
            }
        }
        Ok(Sandbox {
            emulator,
            kubeconfig: opts.kubeconfig,
            installed,
            hints: opts.hints,
        })
    }

    /// The emulator (faults, counters, URL).
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// A kube client for the sandbox (for the controller and simulators).
    pub fn client(&self) -> kube::Client {
        self.emulator.client()
    }

    /// Where the kubeconfig was written.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `kind/name` of every object the manifests installed.
    pub fn installed(&self) -> &[String] {
        &self.installed
    }

    /// What to print for the user: where things are and what to type next.
    pub fn banner(&self) -> String {
        let kc = self.kubeconfig.display();
        let mut b = format!(
            "Kubernetes API emulator running at {}\nkubeconfig written to {kc}\ninstalled {} object(s)\n\nTry:\n  export KUBECONFIG={kc}\n",
            self.emulator.url(),
            self.installed.len()
        );
        for h in &self.hints {
            b.push_str(&format!("  {h}\n"));
        }
        b.push_str("\nPress Ctrl-C to stop.\n");
        b
    }

    /// Stops the emulator and waits for open connections.
    pub async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_manifests_and_lists_are_flattened() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n---\n";
        let objs = parse_manifest(text).unwrap();
        let names: Vec<&str> = objs
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
        assert!(parse_manifest("a: [").is_err());
    }
}
