//! The API server a benchmark run measures: patchbay's emulator, or a real kube-apiserver with
//! etcd (`--server apiserver`, the one the end-to-end tests run, from `scripts/envtest`). Both
//! give request counters per verb and resource: the emulator counts itself; the real server's
//! come from its `/metrics` (`apiserver_request_total`), counted from the last reset.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use kube::Client;
use kube::api::{Api, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use patchbay::api::VcsAuthToken;
use testkit::apiserver::{Counters, Emulator, EmulatorOptions, RequestKind};
use testkit::envtest::{ApiServer, Identity};

use super::fleet::BoxError;

/// A running API server and an administrator's client of it.
pub enum Server {
    /// The in-process emulator.
    Emulator(Emulator),
    /// A kube-apiserver and etcd as child processes, ending with this process.
    Real {
        server: ApiServer,
        client: Client,
        /// The counters at the last reset.
        baseline: Mutex<Counters>,
    },
}

impl Server {
    /// Starts the emulator, or with `real` a kube-apiserver.
    pub async fn start(real: bool) -> Result<Self, BoxError> {
        if !real {
            let emu = Emulator::start(EmulatorOptions {
                // Room for every change of a 10,000-token run, so a re-watch never has to relist.
                history_window: 500_000,
                ..Default::default()
            })
            .await?;
            return Ok(Server::Emulator(emu));
        }
        let server = tokio::task::spawn_blocking(ApiServer::start).await??;
        let client = server.client(Identity::Admin).await;
        Ok(Server::Real {
            server,
            client,
            baseline: Mutex::new(Counters::default()),
        })
    }

    /// What the report calls it.
    pub fn describe(&self) -> &'static str {
        match self {
            Server::Emulator(_) => "patchbay's API emulator",
            Server::Real { .. } => "a real kube-apiserver with etcd (scripts/envtest)",
        }
    }

    /// An administrator's client.
    pub fn client(&self) -> Client {
        match self {
            Server::Emulator(emu) => emu.client(),
            Server::Real { client, .. } => client.clone(),
        }
    }

    /// Writes an administrator's kubeconfig to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), BoxError> {
        match self {
            Server::Emulator(emu) => emu.write_kubeconfig(path)?,
            Server::Real { server, .. } => {
                std::fs::copy(server.kubeconfig_path(Identity::Admin), path)?;
            }
        }
        Ok(())
    }

    /// Requests served since the last reset, per (verb, resource).
    pub async fn counters(&self) -> Counters {
        match self {
            Server::Emulator(emu) => emu.counters(),
            Server::Real {
                client, baseline, ..
            } => {
                let now = metrics(client).await.unwrap_or_default();
                let base = baseline.lock().unwrap_or_else(|e| e.into_inner());
                let since = now.0.into_iter().map(|(kind, n)| {
                    let before = base.0.get(&kind).copied().unwrap_or(0);
                    (kind, n.saturating_sub(before))
                });
                Counters(since.collect())
            }
        }
    }

    /// Starts counting from zero.
    pub async fn reset_counters(&self) {
        match self {
            Server::Emulator(emu) => emu.reset_counters(),
            Server::Real {
                client, baseline, ..
            } => {
                let now = metrics(client).await.unwrap_or_default();
                *baseline.lock().unwrap_or_else(|e| e.into_inner()) = now;
            }
        }
    }

    /// Installs the chart's MutatingAdmissionPolicy that sets the revocation finalizer in a
    /// token's own create (`charts/patchbay/templates/revoke-finalizer-policy.yaml`, rendered by
    /// helm from `scripts/helm`), and waits until the server applies it to a dry-run token in
    /// `namespace`. Only on the real server: the emulator has no admission policies. Whether
    /// the policy is in force.
    pub async fn admit_finalizer(&self, namespace: &str) -> Result<bool, BoxError> {
        let Server::Real { client, .. } = self else {
            return Ok(false);
        };
        let rendered = tokio::task::spawn_blocking(render_finalizer_policy).await??;
        let documents: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&rendered)?;
        for document in documents.into_iter().filter(|d| !d.is_null()) {
            let kind = document["kind"].as_str().unwrap_or_default().to_string();
            let plural = match kind.as_str() {
                "MutatingAdmissionPolicy" => "mutatingadmissionpolicies",
                _ => "mutatingadmissionpolicybindings",
            };
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", &kind),
                plural,
            );
            let object: DynamicObject = serde_json::from_value(document)?;
            Api::<DynamicObject>::all_with(client.clone(), &resource)
                .create(&PostParams::default(), &object)
                .await?;
        }
        let tokens: Api<VcsAuthToken> = Api::namespaced(client.clone(), namespace);
        let probe: VcsAuthToken = serde_json::from_value(serde_json::json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "admission-probe"},
            "spec": {"connection": "any", "github": {"repositories": ["app"]}}}))?;
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let made = tokens.create(&dry_run, &probe).await?;
            if made.metadata.finalizers.is_some_and(|f| !f.is_empty()) {
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Err("the server did not apply the finalizer policy within 30 s".into())
    }

    /// Stops the server (the real one ends with this process).
    pub async fn shutdown(self) {
        if let Server::Emulator(emu) = self {
            emu.shutdown().await;
        }
    }
}

/// The chart's finalizer policy as `helm template` renders it for a Kubernetes 1.36 cluster.
fn render_finalizer_policy() -> Result<String, BoxError> {
    let root = env!("CARGO_MANIFEST_DIR");
    let helm = match std::env::var_os("PATCHBAY_HELM").filter(|p| !p.is_empty()) {
        Some(path) => std::path::PathBuf::from(path),
        None => {
            let out = Command::new(format!("{root}/scripts/helm")).output()?;
            if !out.status.success() {
                return Err("scripts/helm could not provide helm".into());
            }
            String::from_utf8(out.stdout)?.trim().into()
        }
    };
    let out = Command::new(helm)
        .args(["template", "patchbay", &format!("{root}/charts/patchbay")])
        .args(["--kube-version", "1.36.0"])
        .args([
            "--api-versions",
            "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",
        ])
        .args(["--show-only", "templates/revoke-finalizer-policy.yaml"])
        .output()?;
    if !out.status.success() {
        return Err(format!("helm template: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// What a kube-apiserver writes by itself.
const OWN_RESOURCES: [&str; 3] = ["leases", "endpoints", "endpointslices"];

/// `apiserver_request_total` of a real API server, summed over response codes, in the
/// emulator's terms (verbs `create`, `apply`, ...; resources `plural[.group][/subresource]`).
async fn metrics(client: &Client) -> Result<Counters, BoxError> {
    let request = hyper::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut counters = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split("\",")
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let verb = match label("verb").as_str() {
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "APPLY" => "apply",
            "DELETE" => "delete",
            "DELETECOLLECTION" => "deletecollection",
            "GET" => "get",
            "LIST" => "list",
            "WATCH" | "WATCHLIST" => "watch",
            _ => continue,
        };
        let mut resource = label("resource");
        // The API server renews its own identity Lease and reconciles the `kubernetes`
        // Service's endpoints through its loopback client every few seconds: not the
        // operator's requests (which use no Lease here: the bench runs it without election).
        if resource.is_empty() || OWN_RESOURCES.contains(&resource.as_str()) {
            continue;
        }
        let group = label("group");
        if !group.is_empty() {
            resource = format!("{resource}.{group}");
        }
        let subresource = label("subresource");
        if !subresource.is_empty() {
            resource = format!("{resource}/{subresource}");
        }
        let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        *counters.entry(RequestKind { verb, resource }).or_insert(0) += n;
    }
    Ok(Counters(counters))
}
