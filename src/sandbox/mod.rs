//! `patchbay sandbox`: a whole patchbay installation on this machine, without a cluster. It
//! starts a Kubernetes API — a real kube-apiserver and etcd when `scripts/envtest` (or
//! `KUBEBUILDER_ASSETS`) provides them, patchbay's emulator otherwise — and the GitHub
//! simulator, writes a kubeconfig, installs the CRDs and the examples — the example GitHub App
//! connection pointed at the simulator with a generated key — runs the controllers in-process
//! (on the real server as the ServiceAccount of `examples/install/operator-rbac.yaml`, with only
//! its rights), and stays in the foreground until interrupted.
//!
//! Only built with the `sandbox` feature (on by default); the production image builds with
//! `--no-default-features` and carries none of it.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Client, discovery};
use serde_json::Value;
use testkit::github::{AccountType, AppSpec, GithubSim, InstallationSpec, Role, SimConfig};
use testkit::keys::RsaKey;
use testkit::moto::MotoServer;

use crate::api::crd;
use crate::controller::{self, Options};

/// The namespace the sandbox uses as root project.
pub const ROOT_NAMESPACE: &str = "ci";

mod backend;
mod peers;
use backend::{Backend, start_backend};

/// How to run the sandbox.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Directory for the kubeconfig (created if missing).
    pub dir: PathBuf,
    /// Port of the Kubernetes API on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Which Kubernetes API to start.
    pub server: ServerChoice,
}

/// Which Kubernetes API the sandbox starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ServerChoice {
    /// A real kube-apiserver when `scripts/envtest` has one ready (or `KUBEBUILDER_ASSETS`
    /// names one), else the emulator.
    #[default]
    Auto,
    /// patchbay's in-process Kubernetes API emulator.
    Emulator,
    /// A real kube-apiserver and etcd (built by `scripts/envtest` on first use).
    Apiserver,
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The emulator or the kubeconfig could not be set up.
    #[error("cannot {action}: {error}")]
    Io {
        /// What failed.
        action: String,
        /// The I/O error.
        error: std::io::Error,
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
        include_str!("../../examples/namespaces.yaml"),
    ),
    (
        "connections/aws.yaml",
        include_str!("../../examples/connections/aws.yaml"),
    ),
    (
        "connections/azure-devops-oauth.yaml",
        include_str!("../../examples/connections/azure-devops-oauth.yaml"),
    ),
    (
        "connections/azure-devops-pat.yaml",
        include_str!("../../examples/connections/azure-devops-pat.yaml"),
    ),
    (
        "connections/bitbucket-cloud.yaml",
        include_str!("../../examples/connections/bitbucket-cloud.yaml"),
    ),
    (
        "connections/bitbucket-server.yaml",
        include_str!("../../examples/connections/bitbucket-server.yaml"),
    ),
    (
        "connections/docker-registry.yaml",
        include_str!("../../examples/connections/docker-registry.yaml"),
    ),
    (
        "connections/ecr.yaml",
        include_str!("../../examples/connections/ecr.yaml"),
    ),
    (
        "connections/github-app.yaml",
        include_str!("../../examples/connections/github-app.yaml"),
    ),
    (
        "connections/github-oauth.yaml",
        include_str!("../../examples/connections/github-oauth.yaml"),
    ),
    (
        "connections/gitlab.yaml",
        include_str!("../../examples/connections/gitlab.yaml"),
    ),
    (
        "connections/google.yaml",
        include_str!("../../examples/connections/google.yaml"),
    ),
    (
        "connections/jetbrains-space.yaml",
        include_str!("../../examples/connections/jetbrains-space.yaml"),
    ),
    (
        "connections/npm-registry.yaml",
        include_str!("../../examples/connections/npm-registry.yaml"),
    ),
    (
        "connections/perforce-admin.yaml",
        include_str!("../../examples/connections/perforce-admin.yaml"),
    ),
    (
        "connections/slack.yaml",
        include_str!("../../examples/connections/slack.yaml"),
    ),
];

/// A running sandbox.
pub struct Sandbox {
    backend: Backend,
    github: GithubSim,
    /// moto's server, when it is installed (`scripts/moto install`): the AWS examples use it.
    aws: Option<MotoServer>,
    /// What the registry, package and chat examples talk to.
    peers: peers::Peers,
}

/// Where the AWS examples point when moto is not installed: a closed local port, so the
/// sandbox never reaches the real AWS.
const NO_AWS: &str = "http://127.0.0.1:9";

/// The example App (examples/connections/github-app.yaml) as the simulator knows it.
const EXAMPLE_APP_ID: u64 = 123456;
/// The fake PAT of examples/tokens/github-user-token.yaml, known to the simulator as a user
/// who may write `app` and read `lib-common`.
const EXAMPLE_PAT: &str = "ghp_notARealPersonalAccessToken000000";

/// A GitHub simulator that knows the example App, its installation on `acme` and the
/// repositories the example tokens name.
async fn github_simulator(key: &RsaKey) -> std::io::Result<GithubSim> {
    let sim = GithubSim::start(SimConfig::default()).await?;
    sim.add_app(AppSpec::new(EXAMPLE_APP_ID, "acme-ci", key));
    sim.add_owner("acme", AccountType::Organization);
    for repo in ["app", "app-backend", "lib-common"] {
        sim.add_repo("acme", repo);
    }
    sim.add_installation(InstallationSpec::new(EXAMPLE_APP_ID, "acme").permissions([
        ("contents", "write"),
        ("pull_requests", "write"),
        ("statuses", "write"),
    ]));
    sim.add_user(EXAMPLE_PAT, "release-bot");
    sim.grant(EXAMPLE_PAT, "acme", "app", Role::Write);
    sim.grant(EXAMPLE_PAT, "acme", "lib-common", Role::Read);
    Ok(sim)
}

impl Sandbox {
    /// Starts the emulator and the GitHub simulator, writes the kubeconfig and installs CRDs
    /// and examples.
    pub async fn start(opts: &SandboxOptions) -> Result<Self, SandboxError> {
        let io = |action: &str| {
            let action = action.to_string();
            move |error| SandboxError::Io { action, error }
        };
        let kubeconfig = std::path::absolute(opts.dir.join("kubeconfig"))
            .map_err(io("resolve the kubeconfig path"))?;
        let backend = start_backend(opts, kubeconfig).await?;
        let client = backend.admin();
        install_crds(&client).await?;
        if let Backend::ApiServer { .. } = backend {
            for doc in parse(OPERATOR_RBAC_FILE, OPERATOR_RBAC)? {
                apply(&client, &doc).await?;
            }
        }
        let app_key = RsaKey::generate();
        let github = github_simulator(&app_key)
            .await
            .map_err(io("start the GitHub simulator"))?;
        let aws = MotoServer::start().ok();
        let aws_endpoint = aws
            .as_ref()
            .map_or(NO_AWS.to_string(), MotoServer::endpoint);
        let peers = peers::Peers::start().await;
        for (file, text) in EXAMPLES {
            for mut doc in parse(&format!("examples/{file}"), text)? {
                use_generated_app_key(&mut doc, &app_key);
                use_simulated_github(&mut doc, &github.ghes_url());
                use_local_aws(&mut doc, &aws_endpoint);
                peers.rewrite(&mut doc);
                apply(&client, &doc).await?;
            }
        }
        Ok(Self {
            backend,
            github,
            aws,
            peers,
        })
    }

    /// What to print for the user: where things are and what to type next.
    pub fn banner(&self) -> String {
        let kubeconfig = self.kubeconfig().display().to_string();
        let mut text = format!(
            "patchbay sandbox is running: {}, with the CRDs, the example\n\
             namespaces and connections installed and the operator reconciling them. The example\n\
             GitHub App talks to a GitHub simulator at {}; the AWS examples talk to {};\n\
             the registry, package and chat examples to {}.\n\n\
             kubeconfig: {kubeconfig}\n\nTry:\n  export KUBECONFIG={kubeconfig}\n",
            self.backend.describe(),
            self.github.ghes_url(),
            self.aws.as_ref().map_or_else(
                || "no AWS (install moto with scripts/moto install to try them)".to_string(),
                |m| format!("moto at {}", m.endpoint())
            ),
            self.peers.describe(),
        );
        for hint in HINTS {
            text.push_str(&format!("  {hint}\n"));
        }
        text.push_str("\nPress Ctrl-C to stop.");
        text
    }

    /// The kubeconfig that reaches the sandbox (as an administrator).
    pub fn kubeconfig(&self) -> &Path {
        match &self.backend {
            Backend::Emulator(inner) => inner.kubeconfig(),
            Backend::ApiServer { kubeconfig, .. } => kubeconfig,
        }
    }

    /// An administrator's client for the sandbox's API.
    pub fn client(&self) -> Client {
        self.backend.admin()
    }

    /// Runs the controllers against the sandbox until `shutdown` resolves, then stops it. The
    /// controllers record their work in `telemetry` (served by the caller on `/metrics`).
    pub async fn run(
        self,
        telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ) {
        let options = Options {
            root_namespace: ROOT_NAMESPACE.into(),
            allow_default_credential_chain: false,
            namespace_selector: None,
            superseded_grace: std::time::Duration::from_secs(120),
            allowed_endpoints: Default::default(),
            count_reconciles: false,
        };
        let always = controller::Leadership::always();
        let client = self.backend.operator();
        let (_, operator) = controller::start_elected(client, options, always, telemetry, shutdown);
        operator.await;
        self.github.shutdown().await;
        match self.backend {
            Backend::Emulator(inner) => inner.shutdown().await,
            // Dropping the server stops kube-apiserver and etcd.
            Backend::ApiServer { server, .. } => drop(server),
        }
    }
}

/// The operator's install RBAC: on the real server the sandbox's operator has only these rights.
const OPERATOR_RBAC: &str = include_str!("../../examples/install/operator-rbac.yaml");
const OPERATOR_RBAC_FILE: &str = "examples/install/operator-rbac.yaml";

/// The documents of an embedded manifest.
fn parse(file: &str, text: &str) -> Result<Vec<Value>, SandboxError> {
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple(text).map_err(|e| SandboxError::Install {
            what: file.to_string(),
            message: e.to_string(),
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Commands the banner suggests.
const HINTS: &[&str] = &[
    "kubectl get conn,vat -A",
    "kubectl describe conn -n ci acme-github",
    "kubectl apply -f examples/tokens/github.yaml",
    "kubectl get vat -n team-a app-checkout -w",
    "kubectl get secret -n team-a app-checkout -o yaml",
    "kubectl explain vcsauthtoken.spec.github",
    "kubectl apply -f examples/tokens/",
];

/// The example aws and ecr connections point at AWS; in the sandbox they point at moto (or
/// nowhere).
fn use_local_aws(doc: &mut Value, endpoint: &str) {
    if doc["kind"] != "Connection" {
        return;
    }
    let spec = &mut doc["spec"];
    if let Some(aws) = spec.get_mut("aws").and_then(Value::as_object_mut) {
        aws.insert("stsEndpoint".into(), Value::String(endpoint.to_string()));
    }
    if let Some(ecr) = spec.get_mut("ecr").and_then(Value::as_object_mut) {
        ecr.insert("endpoint".into(), Value::String(endpoint.to_string()));
    }
}

/// The example GitHub App connection points at github.com; in the sandbox it points at the
/// simulator.
fn use_simulated_github(doc: &mut Value, server: &str) {
    if doc["kind"] == "Connection"
        && let Some(app) = doc
            .pointer_mut("/spec/githubApp")
            .and_then(Value::as_object_mut)
    {
        app.insert("serverUrl".into(), Value::String(server.to_string()));
        app.insert("ownerUrl".into(), Value::String(format!("{server}/acme")));
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
        api.patch(
            &kube::ResourceExt::name_any(&crd),
            &PatchParams::apply("patchbay-sandbox").force(),
            &Patch::Apply(&crd),
        )
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
