//! A real kube-apiserver and etcd on loopback, for end-to-end tests (controller-runtime's
//! envtest, for Rust).
//!
//! The binaries come from `KUBEBUILDER_ASSETS` or from the workspace's `scripts/envtest`, which
//! builds pinned ones from source on first use. [`ApiServer::shared`] starts one server per test
//! process, on free loopback ports with a temporary data directory, the first time a test asks;
//! both processes stop when the test process exits (a watchdog shell notices its stdin close),
//! and the data directory is removed then.
//!
//! Authorization is RBAC. Three identities authenticate with static bearer tokens, each with a
//! kubeconfig of its own ([`ApiServer::kubeconfig_path`]):
//!
//! | identity              | user                                          | rights                     |
//! |-----------------------|-----------------------------------------------|----------------------------|
//! | [`Identity::Admin`]    | `envtest-admin` in `system:masters`           | everything                 |
//! | [`Identity::Operator`] | `system:serviceaccount:patchbay-system:patchbay` | what a test binds to it |
//! | [`Identity::Tenant`]   | `tenant`                                      | what a test binds to it    |
//!
//! The operator's user is the ServiceAccount an installation binds its ClusterRole to, so a test
//! can apply the install manifests as they are and run the operator with exactly those rights.

use std::io::{self, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable naming a folder with `kube-apiserver` and `etcd` (setup-envtest's).
pub const ASSETS_ENV: &str = "KUBEBUILDER_ASSETS";
/// The operator identity's user name: the ServiceAccount `patchbay` in `patchbay-system`.
pub const OPERATOR_USER: &str = "system:serviceaccount:patchbay-system:patchbay";
/// The tenant identity's user name.
pub const TENANT_USER: &str = "tenant";

mod target;
pub use target::{TARGET_ENV, TestServer};

const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Who a client or kubeconfig authenticates as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A cluster administrator (`system:masters`).
    Admin,
    /// The operator's ServiceAccount, with only what is bound to it.
    Operator,
    /// A tenant user, with only what is bound to it.
    Tenant,
}

impl Identity {
    const ALL: [Identity; 3] = [Identity::Admin, Identity::Operator, Identity::Tenant];

    fn name(self) -> &'static str {
        match self {
            Identity::Admin => "admin",
            Identity::Operator => "operator",
            Identity::Tenant => "tenant",
        }
    }

    /// The line of the static token file: token, user, uid, groups.
    fn token_line(self, token: &str) -> String {
        match self {
            Identity::Admin => format!("{token},envtest-admin,uid-admin,\"system:masters\""),
            Identity::Operator => format!(
                "{token},{OPERATOR_USER},uid-operator,\"system:serviceaccounts,system:serviceaccounts:patchbay-system\""
            ),
            Identity::Tenant => format!("{token},{TENANT_USER},uid-tenant,\"tenants\""),
        }
    }
}

/// A running kube-apiserver with its etcd.
pub struct ApiServer {
    url: String,
    etcd_url: String,
    dir: PathBuf,
    /// The write ends of the watchdogs' stdin: closed when the process exits.
    _watchdogs: Vec<(Child, ChildStdin)>,
}

impl ApiServer {
    /// The folder holding `kube-apiserver` and `etcd`: `$KUBEBUILDER_ASSETS`, else what the
    /// workspace's `scripts/envtest` prints (building the binaries on first use).
    pub fn assets() -> io::Result<PathBuf> {
        if let Some(dir) = std::env::var_os(ASSETS_ENV).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/envtest");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", script.display())))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{} failed ({}); set {ASSETS_ENV} to a folder with kube-apiserver and etcd",
                script.display(),
                out.status
            )));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    }

    /// The folder with `kube-apiserver` and `etcd` when one is ready now, without building:
    /// `$KUBEBUILDER_ASSETS`, else the workspace's `scripts/envtest` cache. For callers that
    /// fall back to the emulator rather than wait for a first build (the sandbox).
    pub fn assets_if_ready() -> Option<PathBuf> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/envtest");
        let ready = Command::new(&script)
            .arg("--check")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready { Self::assets().ok() } else { None }
    }

    /// The server shared by every test of this process, started on first use.
    ///
    /// Panics with the reason when it cannot start: a test that needs it cannot run without it.
    pub fn shared() -> &'static ApiServer {
        static SHARED: OnceLock<ApiServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            let started = Instant::now();
            let server = Self::start().unwrap_or_else(|e| panic!("kube-apiserver: {e}"));
            let _ = writeln!(
                io::stderr(),
                "envtest: kube-apiserver at {} ready after {} ms",
                server.url,
                started.elapsed().as_millis()
            );
            server
        })
    }

    /// Starts a new etcd and kube-apiserver (a port taken between probing and binding is
    /// retried).
    pub fn start() -> io::Result<ApiServer> {
        Self::start_with(&Self::assets()?, 0)
    }

    /// Starts etcd and kube-apiserver from `assets`, the API server on `port` (0: a free one).
    pub fn start_with(assets: &Path, port: u16) -> io::Result<ApiServer> {
        Self::start_with_flags(assets, port, &[])
    }

    /// Like [`Self::start_with`], with `flags` added to kube-apiserver's command line (a
    /// feature gate turned off, an audit log): for a test that needs a server of its own.
    pub fn start_with_flags(assets: &Path, port: u16, flags: &[String]) -> io::Result<ApiServer> {
        let mut last = None;
        for _ in 0..3 {
            match Self::spawn(assets, port, flags) {
                Ok(server) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    fn spawn(assets: &Path, port: u16, flags: &[String]) -> io::Result<ApiServer> {
        let dir = tempdir()?;
        let [etcd_port, peer_port, free_port] = free_ports()?;
        let api_port = if port == 0 { free_port } else { port };
        let mut watchdogs = Vec::new();
        // etcd's watchdog also removes the data directory once etcd has stopped.
        watchdogs.push(guarded(
            &assets.join("etcd"),
            &[
                "--data-dir".into(),
                dir.join("etcd").display().to_string(),
                "--listen-client-urls".into(),
                format!("http://127.0.0.1:{etcd_port}"),
                "--advertise-client-urls".into(),
                format!("http://127.0.0.1:{etcd_port}"),
                "--listen-peer-urls".into(),
                format!("http://127.0.0.1:{peer_port}"),
                "--initial-advertise-peer-urls".into(),
                format!("http://127.0.0.1:{peer_port}"),
                "--initial-cluster".into(),
                format!("default=http://127.0.0.1:{peer_port}"),
                "--unsafe-no-fsync".into(),
                "--log-level".into(),
                "warn".into(),
            ],
            &dir.join("etcd.log"),
            Some(&dir),
        )?);

        let tokens: Vec<(Identity, String)> = Identity::ALL
            .iter()
            .map(|&id| (id, random_token()))
            .collect();
        let token_file: String = tokens
            .iter()
            .map(|(id, t)| id.token_line(t) + "\n")
            .collect();
        std::fs::write(dir.join("tokens.csv"), token_file)?;
        let sa_key = dir.join("sa.key");
        std::fs::write(&sa_key, crate::keys::RsaKey::generate().private_pkcs1_pem())?;
        let certs = dir.join("certs");
        let mut args: Vec<String> = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            format!("--cert-dir={}", certs.display()),
            format!("--secure-port={api_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--authorization-mode=RBAC".into(),
            format!("--token-auth-file={}", dir.join("tokens.csv").display()),
            format!("--service-account-key-file={}", sa_key.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            // No controller-manager creates `default` ServiceAccounts, so Pods could not be
            // admitted with this plugin on (envtest turns it off for the same reason).
            "--disable-admission-plugins=ServiceAccount".into(),
            // As hardened clusters do: setting an owner reference with blockOwnerDeletion
            // needs the right to update the owner's finalizers.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement".into(),
            "--v=1".into(),
        ];
        args.extend(flags.iter().cloned());
        watchdogs.push(guarded(
            &assets.join("kube-apiserver"),
            &args,
            &dir.join("kube-apiserver.log"),
            None,
        )?);

        let url = format!("https://127.0.0.1:{api_port}");
        let server = ApiServer {
            url,
            etcd_url: format!("http://127.0.0.1:{etcd_port}"),
            dir,
            _watchdogs: watchdogs,
        };
        for (id, token) in &tokens {
            std::fs::write(server.kubeconfig_path(*id), server.kubeconfig(*id, token))?;
        }
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let kubeconfig = self.kubeconfig_path(Identity::Admin);
        loop {
            // kubectl is on every machine the tests run on; it speaks the kubeconfig as is.
            let ready = Command::new("kubectl")
                .args(["--kubeconfig"])
                .arg(&kubeconfig)
                .args(["get", "--raw", "/readyz", "--request-timeout=2s"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| io::Error::new(e.kind(), format!("kubectl (to probe /readyz): {e}")))?
                .success();
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "not ready within {} s; its log:\n{}",
                        START_TIMEOUT.as_secs(),
                        self.log_tail()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// etcd's client URL, `http://127.0.0.1:PORT` (plain HTTP; its JSON gateway serves
    /// `/v3/kv/compaction`, for tests of what clients see after a compaction).
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// The kubeconfig file for `id` (written when the server started).
    pub fn kubeconfig_path(&self, id: Identity) -> PathBuf {
        self.dir.join(format!("{}.kubeconfig", id.name()))
    }

    fn kubeconfig(&self, id: Identity, token: &str) -> String {
        let ca = self.dir.join("certs/apiserver.crt");
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {url}\n    \
             certificate-authority: {ca}\ncontexts:\n- name: {name}\n  context:\n    cluster: envtest\n    \
             user: {name}\n    namespace: default\ncurrent-context: {name}\nusers:\n- name: {name}\n  user:\n    \
             token: {token}\n",
            url = self.url,
            ca = ca.display(),
            name = id.name(),
        )
    }

    /// A kube client authenticated as `id`. Call it inside the tokio runtime that will use it.
    pub async fn client(&self, id: Identity) -> kube::Client {
        let path = self.kubeconfig_path(id);
        let kubeconfig = kube::config::Kubeconfig::read_from(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        kube::Client::try_from(config).expect("a client from the envtest kubeconfig")
    }

    /// The last lines of kube-apiserver's and etcd's logs, for failure messages.
    pub fn log_tail(&self) -> String {
        ["kube-apiserver.log", "etcd.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                format!("--- {name}\n{tail}\n")
            })
            .collect()
    }
}

/// Runs `binary args` under a watchdog shell that kills it (and removes `cleanup`) when its
/// stdin closes, which happens when this process exits, however it exits. SIGKILL, because the
/// data is thrown away and kube-apiserver's graceful shutdown can wait on an etcd already gone.
fn guarded(
    binary: &Path,
    args: &[String],
    log: &Path,
    cleanup: Option<&Path>,
) -> io::Result<(Child, ChildStdin)> {
    if !binary.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} does not exist", binary.display()),
        ));
    }
    let script = r#"log=$1; cleanup=$2; shift 2
"$@" >"$log" 2>&1 </dev/null &
child=$!
cat >/dev/null
kill -9 "$child" 2>/dev/null; wait "$child"
[ -n "$cleanup" ] && rm -rf "$cleanup"
exit 0"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(log)
        .arg(cleanup.map(|p| p.display().to_string()).unwrap_or_default())
        .arg(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let stdin = child.stdin.take().expect("stdin is piped");
    Ok((child, stdin))
}

/// A short id for one test's objects on a shared server: `prefix`, four hex digits that differ
/// between runs (so runs against a long-lived cluster do not collide), and a counter that
/// differs between the tests of one process, e.g. `t1a2b-3`.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{:04x}", (nanos ^ std::process::id()) & 0xffff)
    });
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{run}-{n}")
}

fn free_ports<const N: usize>() -> io::Result<[u16; N]> {
    // Hold all listeners until every port is chosen, so the N ports differ.
    let listeners = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr()?.port();
    }
    Ok(ports)
}

fn tempdir() -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "patchbay-envtest-{}-{}",
        std::process::id(),
        random_token()
    ));
    std::fs::create_dir_all(&dir)?;
    // It holds an administrator's token and kubeconfig: this user's alone.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(dir)
}

/// 32 hex characters from the system's randomness.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
