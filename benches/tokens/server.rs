//! The API server a benchmark run measures: patchbay's emulator, or a real kube-apiserver with
//! etcd (`--server apiserver`, the one the end-to-end tests run, from `scripts/envtest`). Both
//! give request counters per verb and resource: the emulator counts itself; the real server's
//! come from its `/metrics` (`apiserver_request_total`), counted from the last reset. The real
//! server's operator has an identity of its own, and the server audits its requests, so the
//! operator's own requests can be told from the server's and the bench's (see
//! [`Server::operator_requests`]).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use patchbay::api::VcsAuthToken;
use testkit::apiserver::{Counters, Emulator, EmulatorOptions, RequestKind};
use testkit::envtest::{ApiServer, Identity, OPERATOR_USER};

use super::fleet::BoxError;

/// A running API server and an administrator's client of it.
pub enum Server {
    /// The in-process emulator.
    Emulator(Emulator),
    /// A kube-apiserver and etcd as child processes, ending with this process.
    Real(Box<Real>),
}

/// A real kube-apiserver, its administrator's client and what counts its requests.
pub struct Real {
    server: ApiServer,
    client: Client,
    /// The counters at the last reset.
    baseline: Mutex<Counters>,
    /// The server's audit log of the operator's requests.
    audit: PathBuf,
    /// Its length at the last reset.
    audit_offset: Mutex<u64>,
}

/// What the real server audits, at the Metadata level (no bodies): every read of the
/// operator's (cheap: a watch answers nearly all of them), and every request of its in
/// `namespace`. Not its writes elsewhere: 20,000 of them in a 10,000-token run would load the
/// server the run times.
fn audit_policy(namespace: &str) -> String {
    format!(
        r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: ["{OPERATOR_USER}"]
    verbs: ["get", "list", "watch"]
  - level: Metadata
    users: ["{OPERATOR_USER}"]
    namespaces: ["{namespace}"]
  - level: None
"#
    )
}

impl Server {
    /// Starts the emulator, or with `real` a kube-apiserver that audits every read of the
    /// operator's and every request of its in `audited_namespace`.
    pub async fn start(real: bool, audited_namespace: &str) -> Result<Self, BoxError> {
        if !real {
            let emu = Emulator::start(EmulatorOptions {
                // Room for every change of a 10,000-token run, so a re-watch never has to relist.
                history_window: 500_000,
                ..Default::default()
            })
            .await?;
            return Ok(Server::Emulator(emu));
        }
        let dir = std::env::temp_dir().join(format!("patchbay-bench-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let policy = dir.join("policy.yaml");
        std::fs::write(&policy, audit_policy(audited_namespace))?;
        let audit = dir.join("audit.log");
        let flags = vec![
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", audit.display()),
        ];
        let server = tokio::task::spawn_blocking(move || {
            ApiServer::start_with_flags(&ApiServer::assets()?, 0, &flags)
        })
        .await??;
        let client = server.client(Identity::Admin).await;
        // The operator's identity may do anything (the chart's narrower rights are the
        // end-to-end tests' subject, not the bench's).
        let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "patchbay-bench-operator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": OPERATOR_USER}],
        }))?;
        Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &binding)
            .await?;
        Ok(Server::Real(Box::new(Real {
            server,
            client,
            baseline: Mutex::new(Counters::default()),
            audit,
            audit_offset: Mutex::new(0),
        })))
    }

    /// What the report calls it.
    pub fn describe(&self) -> &'static str {
        match self {
            Server::Emulator(_) => "patchbay's API emulator",
            Server::Real(_) => "a real kube-apiserver with etcd (scripts/envtest)",
        }
    }

    /// An administrator's client.
    pub fn client(&self) -> Client {
        match self {
            Server::Emulator(emu) => emu.client(),
            Server::Real(real) => real.client.clone(),
        }
    }

    /// Writes the operator's kubeconfig to `path`: an administrator's on the emulator, the
    /// operator's own identity on the real server.
    pub fn write_operator_kubeconfig(&self, path: &Path) -> Result<(), BoxError> {
        match self {
            Server::Emulator(emu) => emu.write_kubeconfig(path)?,
            Server::Real(real) => {
                std::fs::copy(real.server.kubeconfig_path(Identity::Operator), path)?;
            }
        }
        Ok(())
    }

    /// Requests served since the last reset, per (verb, resource).
    pub async fn counters(&self) -> Counters {
        match self {
            Server::Emulator(emu) => emu.counters(),
            Server::Real(real) => {
                let now = metrics(&real.client).await.unwrap_or_default();
                let base = real.baseline.lock().unwrap_or_else(|e| e.into_inner());
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
            Server::Real(real) => {
                let now = metrics(&real.client).await.unwrap_or_default();
                *real.baseline.lock().unwrap_or_else(|e| e.into_inner()) = now;
                let length = std::fs::metadata(&real.audit).map_or(0, |m| m.len());
                *real.audit_offset.lock().unwrap_or_else(|e| e.into_inner()) = length;
            }
        }
    }

    /// On the real server, the operator's own audited requests since the last reset (see
    /// [`audit_policy`]): each read, each list streamed by a watch (`watch` here), and each
    /// request in the audited namespace; not a watch that resumes from a resource version,
    /// which reads nothing again. None on the emulator, whose counters hold only the
    /// operator's requests and the bench's creates.
    pub fn operator_requests(&self) -> Option<Counters> {
        let Server::Real(real) = self else {
            return None;
        };
        let offset = *real.audit_offset.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&real.audit) {
            let _ = file.seek(SeekFrom::Start(offset));
            let _ = file.read_to_string(&mut text);
        }
        let mut counters = Counters::default();
        for event in text.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(event) else {
                continue;
            };
            if event["user"]["username"] != OPERATOR_USER {
                continue;
            }
            let stage = event["stage"].as_str().unwrap_or_default();
            let verb = event["verb"].as_str().unwrap_or_default();
            let counted = if verb == "watch" {
                // A streamed list, counted when its answer starts.
                let uri = event["requestURI"].as_str().unwrap_or_default();
                uri.contains("sendInitialEvents=true") && stage == "ResponseStarted"
            } else {
                stage == "ResponseComplete"
            };
            let Some(&verb) = VERBS.iter().find(|v| **v == verb) else {
                continue;
            };
            if !counted {
                continue;
            }
            let object = &event["objectRef"];
            let text = |field: &str| object[field].as_str().unwrap_or_default().to_string();
            let mut resource = text("resource");
            if !text("apiGroup").is_empty() {
                resource = format!("{resource}.{}", text("apiGroup"));
            }
            if !text("subresource").is_empty() {
                resource = format!("{resource}/{}", text("subresource"));
            }
            counters.record(RequestKind { verb, resource });
        }
        Some(counters)
    }

    /// Installs the chart's MutatingAdmissionPolicy that sets the revocation finalizer in a
    /// token's own create (`charts/patchbay/templates/revoke-finalizer-policy.yaml`, rendered by
    /// helm from `scripts/helm`), and waits until the server applies it to a dry-run token in
    /// `namespace`. Only on the real server: the emulator has no admission policies. Whether
    /// the policy is in force.
    pub async fn admit_finalizer(&self, namespace: &str) -> Result<bool, BoxError> {
        let Server::Real(real) = self else {
            return Ok(false);
        };
        let client = &real.client;
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

/// The verbs of the emulator's counters.
const VERBS: [&str; 9] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "apply",
    "delete",
    "deletecollection",
];

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
