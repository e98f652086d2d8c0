//! The Helm chart installed into the test API server, and operator processes run exactly as its
//! Deployment runs them: the container's arguments and environment, authenticated as a
//! ServiceAccount with a token from the TokenRequest API.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::Value;
use testkit::envtest::{Identity, TestServer};
use tokio::sync::{OnceCell, RwLock};

use super::KillOnDrop;

/// The release's namespace and name, as the README's install command has them.
pub const NAMESPACE: &str = "patchbay-system";
/// The release name; with the chart's name it makes the object names `patchbay`.
pub const RELEASE: &str = "patchbay";
/// The chart in the repository.
pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/patchbay");

/// Tests that use the installed release hold this for reading; the uninstall test for writing.
pub static RELEASE_LOCK: RwLock<()> = RwLock::const_new(());

/// The chart installed into the shared kube-apiserver (once per test binary), and an
/// administrator's client for the calling test (a client lives on one test's runtime).
pub struct Installed {
    /// The server.
    pub server: TestServer,
    /// An administrator's client.
    pub admin: Client,
    /// The administrator's kubeconfig (for helm and kubectl).
    pub kubeconfig: PathBuf,
}

/// The helm binary: `$PATCHBAY_HELM` (what scripts/test exports), else built by scripts/helm.
pub fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("PATCHBAY_HELM").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/helm"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/helm runs");
    assert!(out.status.success(), "scripts/helm could not provide helm");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs helm with `args` against the server of `kubeconfig`; its combined output, or a panic
/// naming what failed.
pub fn run_helm(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(helm())
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .expect("helm runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "helm {args:?} failed:\n{text}");
    text
}

/// `helm install` of the chart with its default values, into [`NAMESPACE`]. With them the
/// finalizer policy covers every namespace of the test server, while the tests' operators each
/// serve a few (`--namespace-selector`): a token no test operator serves keeps its finalizer,
/// which is harmless here because the tests never delete their namespaces.
pub fn install(kubeconfig: &Path) -> String {
    run_helm(
        kubeconfig,
        &[
            "install",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--create-namespace",
        ],
    )
}

/// The chart, installed once for this test binary; `None` (with a note) on the emulator or a
/// cluster of one's own, where helm has no kubeconfig of ours to use.
pub async fn installed() -> Option<Installed> {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    let server = TestServer::start().await;
    if !matches!(server, TestServer::ApiServer(_)) {
        eprintln!("skipped: the chart tests need the test kube-apiserver (RBAC, admission)");
        return None;
    }
    let kubeconfig = server.kubeconfig_path(Identity::Admin)?;
    let path = kubeconfig.clone();
    INSTALLED
        .get_or_init(|| async move {
            tokio::task::spawn_blocking(move || install(&path))
                .await
                .unwrap();
        })
        .await;
    let admin = server.client(Identity::Admin).await;
    Some(Installed {
        server,
        admin,
        kubeconfig,
    })
}

impl Installed {
    /// A kubeconfig authenticated as ServiceAccount `account` of [`NAMESPACE`], with a token
    /// from the TokenRequest API (an hour long), written into `dir`.
    pub async fn service_account_kubeconfig(&self, account: &str, dir: &Path) -> PathBuf {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![],
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = accounts
            .create_token_request(account, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("a token for ServiceAccount {account}: {e}"));
        let token = answer
            .status
            .expect("a TokenRequest answer has a status")
            .token;
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let mut config: Value = serde_saphyr::from_str(&text).unwrap();
        config["users"][0]["user"] = serde_json::json!({ "token": token });
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{account}.kubeconfig"));
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        path
    }

    /// The operator container of the installed Deployment: its arguments and environment
    /// (downward-API values filled in as the kubelet would for pod `pod`).
    pub async fn container(&self, pod: &str) -> (Vec<String>, Vec<(String, String)>) {
        let deployments: Api<Deployment> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let deployment = deployments
            .get(RELEASE)
            .await
            .expect("the chart's Deployment");
        let spec = deployment.spec.unwrap().template.spec.unwrap();
        let container = spec.containers.into_iter().next().unwrap();
        let mut env = Vec::new();
        for var in container.env.unwrap_or_default() {
            let value = match (var.value, var.value_from) {
                (Some(v), _) => v,
                (None, Some(from)) => match from.field_ref.map(|f| f.field_path).as_deref() {
                    Some("metadata.namespace") => NAMESPACE.into(),
                    Some("metadata.name") => pod.into(),
                    other => panic!("the test does not fill in {other:?}"),
                },
                (None, None) => String::new(),
            };
            env.push((var.name, value));
        }
        (container.args.unwrap_or_default(), env)
    }

    /// `patchbay run` as the chart's container runs it, as pod `pod`, with the arguments in
    /// `overrides` replacing the chart's of the same flag (`--flag=value`), logging into `log`.
    pub async fn operator(
        &self,
        kubeconfig: &Path,
        pod: &str,
        overrides: &[String],
        log: &Path,
    ) -> KillOnDrop {
        let (args, env) = self.container(pod).await;
        let flag = |a: &str| a.split('=').next().unwrap_or_default().to_string();
        let replaced: Vec<String> = overrides.iter().map(|o| flag(o)).collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_patchbay"));
        command
            .args(args.iter().filter(|a| !replaced.contains(&flag(a))))
            .args(overrides)
            .env_clear()
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()));
        for (name, value) in env {
            command.env(name, value);
        }
        KillOnDrop(command.spawn().unwrap(), Some(log.to_path_buf()))
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `http://127.0.0.1:port/path`: the status and the body (`None` while nothing listens).
pub async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
