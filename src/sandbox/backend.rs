//! The Kubernetes API under the sandbox: a real kube-apiserver when one is ready (or asked
//! for), the emulator otherwise.

use std::path::PathBuf;

use kube::Client;
use testkit::envtest::{ApiServer, Identity};

use super::{HINTS, SandboxError, SandboxOptions, ServerChoice};

/// The Kubernetes API a sandbox runs on.
pub(super) enum Backend {
    /// The emulator, with the kubeconfig `testkit::sandbox` wrote.
    Emulator(testkit::sandbox::Sandbox),
    /// A real kube-apiserver (stopped when dropped).
    ApiServer {
        server: ApiServer,
        kubeconfig: PathBuf,
        admin: Client,
        operator: Client,
    },
}

/// Starts the Kubernetes API `opts.server` asks for and writes its kubeconfig.
pub(super) async fn start_backend(
    opts: &SandboxOptions,
    kubeconfig: PathBuf,
) -> Result<Backend, SandboxError> {
    let assets = match opts.server {
        ServerChoice::Emulator => None,
        ServerChoice::Auto => ApiServer::assets_if_ready(),
        ServerChoice::Apiserver => Some(ApiServer::assets().map_err(|error| SandboxError::Io {
            action: "find or build kube-apiserver and etcd (scripts/envtest)".into(),
            error,
        })?),
    };
    let Some(assets) = assets else {
        let inner = testkit::sandbox::Sandbox::start(testkit::sandbox::SandboxOptions {
            kubeconfig,
            manifests: Vec::new(),
            hints: HINTS.iter().map(|h| h.to_string()).collect(),
            port: opts.port,
        })
        .await
        .map_err(|e| SandboxError::Io {
            action: "start the Kubernetes API emulator".into(),
            error: std::io::Error::other(e.to_string()),
        })?;
        return Ok(Backend::Emulator(inner));
    };
    let port = opts.port;
    let server = tokio::task::spawn_blocking(move || ApiServer::start_with(&assets, port))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(|error| SandboxError::Io {
            action: "start kube-apiserver and etcd".into(),
            error,
        })?;
    if let Some(dir) = kubeconfig.parent() {
        std::fs::create_dir_all(dir).map_err(|error| SandboxError::Io {
            action: format!("create {}", dir.display()),
            error,
        })?;
    }
    std::fs::copy(server.kubeconfig_path(Identity::Admin), &kubeconfig)
        .and_then(|_| {
            // An administrator's token: readable by this user only.
            std::fs::set_permissions(
                &kubeconfig,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
        })
        .map_err(|error| SandboxError::Io {
            action: format!("write {}", kubeconfig.display()),
            error,
        })?;
    let admin = server.client(Identity::Admin).await;
    let operator = server.client(Identity::Operator).await;
    Ok(Backend::ApiServer {
        server,
        kubeconfig,
        admin,
        operator,
    })
}

impl Backend {
    /// An administrator's client.
    pub(super) fn admin(&self) -> Client {
        match self {
            Backend::Emulator(inner) => inner.client(),
            Backend::ApiServer { admin, .. } => admin.clone(),
        }
    }

    /// The client the controllers use: the operator's ServiceAccount on the real server.
    pub(super) fn operator(&self) -> Client {
        match self {
            Backend::Emulator(inner) => inner.client(),
            Backend::ApiServer { operator, .. } => operator.clone(),
        }
    }

    /// Which API this is, for the banner.
    pub(super) fn describe(&self) -> String {
        match self {
            Backend::Emulator(inner) => format!(
                "patchbay's Kubernetes API emulator at {} (run scripts/envtest once to get a real \
                 kube-apiserver next time)",
                inner.emulator().url()
            ),
            Backend::ApiServer { server, .. } => format!(
                "a real kube-apiserver with etcd at {} (RBAC on; the operator runs as \
                 patchbay-system/patchbay)",
                server.url()
            ),
        }
    }
}
