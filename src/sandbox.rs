//! `patchbay sandbox`: a whole patchbay installation on this machine, without a cluster. It
//! starts the testkit's Kubernetes API emulator, writes a kubeconfig, installs the CRDs and the
//! examples, runs the controllers in-process, and stays in the foreground until interrupted.
//!
//! Only built with the `sandbox` feature (on by default); the production image builds with
//! `--no-default-features` and carries none of it.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Client, discovery};
use serde_json::Value;
use testkit::apiserver::{Emulator, EmulatorOptions};
use testkit::keys::RsaKey;

use crate::api::crd;
use crate::controller::{self, Options};

/// The namespace the sandbox uses as root project.
pub const ROOT_NAMESPACE: &str = "ci";

/// How to run the sandbox.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Directory for the kubeconfig (created if missing).
    pub dir: PathBuf,
    /// Port of the API emulator on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The emulator or the kubeconfig could not be set up.
    #[error("cannot {action}: {source}")]
    Io {
        /// What failed.
        action: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An object could not be installed.
    #[error("cannot install {what}: {message}")]
    Install {
        /// Which object.
        what: String,
        /// The API error.
        message: String,
    },
}

/// Example manifests the sandbox installs, embedded so the binary works from any directory.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "namespaces.yaml",
        include_str!("../examples/namespaces.yaml"),
    ),
    (
        "connections/aws.yaml",
        include_str!("../examples/connections/aws.yaml"),
    ),
    (
        "connections/azure-devops-oauth.yaml",
        include_str!("../examples/connections/azure-devops-oauth.yaml"),
    ),
    (
        "connections/azure-devops-pat.yaml",
        include_str!("../examples/connections/azure-devops-pat.yaml"),
    ),
    (
        "connections/bitbucket-cloud.yaml",
        include_str!("../examples/connections/bitbucket-cloud.yaml"),
    ),
    (
        "connections/bitbucket-server.yaml",
        include_str!("../examples/connections/bitbucket-server.yaml"),
    ),
    (
        "connections/docker-registry.yaml",
        include_str!("../examples/connections/docker-registry.yaml"),
    ),
    (
        "connections/ecr.yaml",
        include_str!("../examples/connections/ecr.yaml"),
    ),
    (
        "connections/github-app.yaml",
        include_str!("../examples/connections/github-app.yaml"),
    ),
    (
        "connections/github-oauth.yaml",
        include_str!("../examples/connections/github-oauth.yaml"),
    ),
    (
        "connections/gitlab.yaml",
        include_str!("../examples/connections/gitlab.yaml"),
    ),
    (
        "connections/google.yaml",
        include_str!("../examples/connections/google.yaml"),
    ),
    (
        "connections/jetbrains-space.yaml",
        include_str!("../examples/connections/jetbrains-space.yaml"),
    ),
    (
        "connections/npm-registry.yaml",
        include_str!("../examples/connections/npm-registry.yaml"),
    ),
    (
        "connections/perforce-admin.yaml",
        include_str!("../examples/connections/perforce-admin.yaml"),
    ),
    (
        "connections/slack.yaml",
        include_str!("../examples/connections/slack.yaml"),
    ),
];

/// A running sandbox.
pub struct Sandbox {
    emulator: Emulator,
    kubeconfig: PathBuf,
}

impl Sandbox {
    /// Starts the emulator, writes the kubeconfig and installs CRDs and examples.
    pub async fn start(opts: &SandboxOptions) -> Result<Self, SandboxError> {
        let io = |action: &str| {
            let action = action.to_string();
            move |source| SandboxError::Io { action, source }
        };
        let emulator = Emulator::start(EmulatorOptions {
            port: opts.port,
            ..Default::default()
        })
        .await
        .map_err(io("start the Kubernetes API emulator"))?;
        std::fs::create_dir_all(&opts.dir)
            .map_err(io(&format!("create {}", opts.dir.display())))?;
        let kubeconfig = std::path::absolute(opts.dir.join("kubeconfig"))
            .map_err(io("resolve the kubeconfig path"))?;
        emulator
            .write_kubeconfig(&kubeconfig)
            .map_err(io(&format!("write {}", kubeconfig.display())))?;
        let client = emulator.client();
        install_crds(&client).await?;
        let app_key = RsaKey::generate();
        for (file, text) in EXAMPLES {
            let docs: Vec<Value> =
                serde_saphyr::from_str_multiple(text).map_err(|e| SandboxError::Install {
                    what: format!("examples/{file}"),
                    message: e.to_string(),
                })?;
            for mut doc in docs.into_iter().filter(|d| !d.is_null()) {
                use_generated_app_key(&mut doc, &app_key);
                apply(&client, &doc).await?;
            }
        }
        Ok(Self {
            emulator,
            kubeconfig,
        })
    }

    /// The kubeconfig that reaches the sandbox.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client for the sandbox's API.
    pub fn client(&self) -> Client {
        self.emulator.client()
    }

    /// The emulator's URL.
    pub fn url(&self) -> String {
        self.emulator.url()
    }

    /// Runs the controllers against the sandbox until `shutdown` resolves, then stops it.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
        let options = Options {
            root_namespace: ROOT_NAMESPACE.into(),
            allow_default_credential_chain: false,
        };
        controller::run(self.client(), options, shutdown).await;
        self.emulator.shutdown().await;
    }
}

/// The example GitHub App Secret holds a placeholder; the sandbox puts a real (generated) key.
fn use_generated_app_key(doc: &mut Value, key: &RsaKey) {
    if doc["kind"] == "Secret"
        && doc["metadata"]["name"] == "acme-github-app"
        && let Some(data) = doc.get_mut("stringData").and_then(Value::as_object_mut)
    {
        data.insert(
            "private-key.pem".into(),
            Value::String(key.private_pkcs1_pem()),
        );
    }
}

async fn install_crds(client: &Client) -> Result<(), SandboxError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (file, crd) in crd::all() {
        api.create(&PostParams::default(), &crd)
            .await
            .map_err(|e| SandboxError::Install {
                what: format!("crds/{file}"),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

/// Server-side applies one manifest of any kind the API serves.
pub async fn apply(client: &Client, doc: &Value) -> Result<(), SandboxError> {
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let failed = |message: String| SandboxError::Install {
        what: format!("{} {name}", doc["kind"].as_str().unwrap_or("object")),
        message,
    };
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap_or_default());
    let mut retries = 0;
    let (resource, _) = loop {
        // A CRD just created needs a moment before its kind is served.
        match discovery::pinned_kind(client, &gvk).await {
            Ok(found) => break found,
            Err(_) if retries < 50 => {
                retries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        name,
        &PatchParams::apply("patchbay-sandbox").force(),
        &Patch::Apply(doc),
    )
    .await
    .map_err(|e| failed(e.to_string()))?;
    Ok(())
}
