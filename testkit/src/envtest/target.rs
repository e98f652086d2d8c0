//! Which API server a test runs against: the shared kube-apiserver, an emulator, or the
//! user's own cluster, chosen by `PATCHBAY_TEST_SERVER`.

use std::path::PathBuf;

use super::{ApiServer, Identity, OPERATOR_USER, TENANT_USER};

/// The environment variable that chooses the API server tests run against.
pub const TARGET_ENV: &str = "PATCHBAY_TEST_SERVER";

/// The API server a test runs against, chosen by `PATCHBAY_TEST_SERVER`:
///
/// - `apiserver` (the default): the process's shared [`ApiServer`];
/// - `emulator`: a fresh emulator per test (quick local runs; no authentication or RBAC);
/// - `kubeconfig`: the cluster of the current kubeconfig context, as its user, with the
///   operator and tenant identities impersonated (the user needs `impersonate` rights).
pub enum TestServer {
    /// The shared real kube-apiserver.
    ApiServer(&'static ApiServer),
    /// patchbay's emulator.
    Emulator(crate::apiserver::Emulator),
    /// The user's own cluster.
    Kubeconfig,
}

impl TestServer {
    /// Starts (or joins) the server `PATCHBAY_TEST_SERVER` selects. Panics on an unknown value
    /// or a server that cannot start.
    pub async fn start() -> Self {
        match std::env::var(TARGET_ENV).as_deref() {
            Ok("") | Ok("apiserver") | Err(_) => {
                // Starting blocks for seconds; keep it off the test's runtime threads.
                let server = tokio::task::spawn_blocking(ApiServer::shared)
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                TestServer::ApiServer(server)
            }
            Ok("emulator") => TestServer::Emulator(
                crate::apiserver::Emulator::start(Default::default())
                    .await
                    .expect("the emulator starts"),
            ),
            Ok("kubeconfig") => TestServer::Kubeconfig,
            Ok(other) => {
                panic!("{TARGET_ENV}={other}: expected apiserver, emulator or kubeconfig")
            }
        }
    }

    /// Whether this is a real Kubernetes API server (authentication and RBAC enforced).
    pub fn is_real(&self) -> bool {
        !matches!(self, TestServer::Emulator(_))
    }

    /// What this server is, for messages.
    pub fn describe(&self) -> String {
        match self {
            TestServer::ApiServer(s) => format!("kube-apiserver at {}", s.url()),
            TestServer::Emulator(e) => format!("the emulator at {}", e.url()),
            TestServer::Kubeconfig => "the current kubeconfig context".into(),
        }
    }

    /// A client authenticated as `id` (on the emulator, every identity is the same anonymous
    /// client).
    pub async fn client(&self, id: Identity) -> kube::Client {
        match self {
            TestServer::ApiServer(s) => s.client(id).await,
            TestServer::Emulator(e) => e.client(),
            TestServer::Kubeconfig => {
                let mut config = kube::Config::infer()
                    .await
                    .expect("a kubeconfig for PATCHBAY_TEST_SERVER=kubeconfig");
                match id {
                    Identity::Admin => {}
                    Identity::Operator => {
                        config.auth_info.impersonate = Some(OPERATOR_USER.into());
                        config.auth_info.impersonate_groups = Some(vec![
                            "system:serviceaccounts".into(),
                            "system:serviceaccounts:patchbay-system".into(),
                            "system:authenticated".into(),
                        ]);
                    }
                    Identity::Tenant => {
                        config.auth_info.impersonate = Some(TENANT_USER.into());
                        config.auth_info.impersonate_groups =
                            Some(vec!["tenants".into(), "system:authenticated".into()]);
                    }
                }
                kube::Client::try_from(config).expect("a client from the kubeconfig")
            }
        }
    }

    /// A kubeconfig file for `id`, for kubectl and `patchbay run` in a subprocess; `None` for
    /// the user's own cluster (use its own kubeconfig).
    pub fn kubeconfig_path(&self, id: Identity) -> Option<PathBuf> {
        match self {
            TestServer::ApiServer(s) => Some(s.kubeconfig_path(id)),
            TestServer::Emulator(e) => {
                let path = std::env::temp_dir().join(format!(
                    "patchbay-emulator-{}-{}.kubeconfig",
                    std::process::id(),
                    e.url().rsplit(':').next().unwrap_or("0")
                ));
                e.write_kubeconfig(&path).ok()?;
                Some(path)
            }
            TestServer::Kubeconfig => None,
        }
    }
}
