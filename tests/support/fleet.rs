//! A fleet of GitHub App tokens for the operator as its own process: the simulated GitHub, the
//! tree of namespaces and tokens it serves, and `patchbay run` as a child process whose memory
//! and metrics are read from outside. The tokens benchmark (`benches/tokens.rs`, which includes
//! this file) and the soak (`tests/soak.rs`) both drive it against the API emulator.
//!
//! ```text
//!   this process: Emulator (127.0.0.1) ◀──kubeconfig── patchbay run (child process)
//!                 GithubSim (GHES)      ◀──HTTP─────────┘
//! ```
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use patchbay::api::{ConditionStatus, Connection, PARENT_LABEL, VcsAuthToken, crd};
use serde_json::json;
use testkit::apiserver::{Emulator, EmulatorOptions};
use testkit::github::{AccountType, AppSpec, GithubSim, InstallationSpec, SimConfig};
use testkit::keys::RsaKey;

/// The root namespace: the App key Secret and the Connection live here.
pub const ROOT: &str = "ci";
/// The simulated App's id.
pub const APP_ID: u64 = 4242;
/// The repositories of owner `acme`; token `tok-i` asks for `REPOS[i % 4]`.
pub const REPOS: [&str; 4] = ["app", "lib", "docs", "infra"];
/// The Connection every token uses.
pub const CONNECTION: &str = "acme-github";
/// The Secret holding the App's private key, in [`ROOT`].
pub const KEY_SECRET: &str = "acme-github-app";
/// Concurrency of the seeding client.
const SEED_CONCURRENCY: usize = 32;

/// Errors of the harness: it reports them, it does not classify them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Starts the GitHub simulator with `config`, App [`APP_ID`] installed on organisation `acme`
/// with the [`REPOS`]; returns it and the App's key.
pub async fn github(config: SimConfig) -> Result<(GithubSim, RsaKey), BoxError> {
    let sim = GithubSim::start(config).await?;
    let key = RsaKey::generate();
    sim.add_app(AppSpec::new(APP_ID, "acme-ci", &key));
    sim.add_owner("acme", AccountType::Organization);
    for repo in REPOS {
        sim.add_repo("acme", repo);
    }
    sim.add_installation(
        InstallationSpec::new(APP_ID, "acme")
            .permissions([("contents", "write"), ("metadata", "read")]),
    );
    Ok((sim, key))
}

/// An API emulator started with `options`, patchbay's CRDs installed, and a scratch directory
/// `patchbay-{name}-{pid}` holding a kubeconfig for the operator: the emulator, the directory
/// and the kubeconfig's path.
pub async fn emulated(
    name: &str,
    options: EmulatorOptions,
) -> Result<(Emulator, PathBuf, PathBuf), BoxError> {
    let emu = Emulator::start(options).await?;
    let dir = std::env::temp_dir().join(format!("patchbay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig)?;
    install_crds(&emu.client()).await?;
    Ok((emu, dir, kubeconfig))
}

/// Waits until `quiet` passes without a write (Events and Leases aside) reaching the emulator,
/// at most a minute.
pub async fn settle(emu: &Emulator, quiet: Duration) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let writes = |emu: &Emulator| -> u64 {
        let counters = emu.counters().0;
        let write = ["create", "update", "patch", "apply", "delete"];
        (counters.iter())
            .filter(|(k, _)| write.contains(&k.verb) && !k.resource.starts_with("events"))
            .filter(|(k, _)| !k.resource.starts_with("leases"))
            .map(|(_, n)| n)
            .sum()
    };
    let mut last = writes(emu);
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = writes(emu);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

/// Installs patchbay's CRDs and waits until they are served.
pub async fn install_crds(client: &Client) -> Result<(), BoxError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in crd::all() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Api::<Connection>::all(client.clone())
        .list(&ListParams::default().limit(1))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err("the CRDs were not served within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Creates `n` objects, [`SEED_CONCURRENCY`] at a time: `object(i)` gives the API and the body
/// of the i-th.
pub async fn create_all<K>(
    n: usize,
    object: impl Fn(usize) -> Result<(Api<K>, K), BoxError>,
) -> Result<(), BoxError>
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    stream::iter(0..n)
        .map(|i| {
            let made = object(i);
            async move {
                let (api, body) = made?;
                api.create(&PostParams::default(), &body).await?;
                Ok::<_, BoxError>(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Creates namespace `name`, under `parent` in the tree when given.
pub async fn create_namespace(
    client: &Client,
    name: &str,
    parent: Option<&str>,
) -> Result<(), BoxError> {
    let labels: BTreeMap<&str, &str> = parent.map(|p| (PARENT_LABEL, p)).into_iter().collect();
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// Namespace `team-{i}`'s parent: three levels below the root, ten namespaces on the first,
/// ninety on the second, the rest on the third.
pub fn parent_of(i: usize) -> String {
    match i {
        0..10 => ROOT.to_string(),
        10..100 => format!("team-{}", i % 10),
        _ => format!("team-{}", 10 + i % 90),
    }
}

/// The namespace of token `tok-{i}` in a fleet of `namespaces` namespaces.
pub fn namespace_of(i: usize, namespaces: usize) -> String {
    format!("team-{}", i % namespaces)
}

/// `ci` with the App key and the Connection; `team-0..namespaces` in a tree three levels deep
/// under it; tokens `tok-0..tokens` spread round-robin, each asking for one repository.
pub async fn seed(
    client: &Client,
    sim: &GithubSim,
    key: &RsaKey,
    tokens: usize,
    namespaces: usize,
) -> Result<(), BoxError> {
    create_namespace(client, ROOT, None).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ROOT);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": KEY_SECRET},
                "stringData": {"private-key.pem": key.private_pkcs1_pem()},
            }))?,
        )
        .await?;
    let connections: Api<Connection> = Api::namespaced(client.clone(), ROOT);
    connections
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
                "metadata": {"name": CONNECTION, "namespace": ROOT},
                "spec": {"githubApp": {
                    "serverUrl": sim.ghes_url(), "appId": APP_ID.to_string(),
                    "privateKey": {"name": KEY_SECRET, "key": "private-key.pem"},
                    "ownerUrl": format!("{}/acme", sim.ghes_url()),
                }},
            }))?,
        )
        .await?;

    let nss: Api<Namespace> = Api::all(client.clone());
    let nss = &nss;
    create_all(namespaces, |i| {
        let ns = json!({"metadata": {
            "name": format!("team-{i}"), "labels": {PARENT_LABEL: parent_of(i)},
        }});
        Ok((nss.clone(), serde_json::from_value(ns)?))
    })
    .await?;
    create_all::<VcsAuthToken>(tokens, |i| {
        let namespace = namespace_of(i, namespaces);
        let token = json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": format!("tok-{i}"), "namespace": namespace},
            "spec": {
                "connection": CONNECTION,
                "github": {"repositories": [REPOS[i % REPOS.len()]]},
            },
        });
        Ok((
            Api::namespaced(client.clone(), &namespace),
            serde_json::from_value(token)?,
        ))
    })
    .await?;
    Ok(())
}

/// The C library's allocator settings the chart's Deployment gives the operator (values.yaml
/// `operator.malloc`). The benchmark runs the operator with them, as it runs in a cluster;
/// `tests/chart.rs` checks that the chart still sets exactly these.
pub const CHART_MALLOC_ENV: [(&str, &str); 2] = [
    ("MALLOC_ARENA_MAX", "1"),
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
];

/// The operator as a child process, with an RSS sampler.
pub struct Operator {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// When it was started.
    pub started: Instant,
    /// Its standard error (the logs).
    pub log: PathBuf,
    /// Where it serves /metrics.
    pub http: std::net::SocketAddr,
    sampler_stop: Arc<AtomicBool>,
    peak_rss_kib: Arc<AtomicU64>,
}

/// Memory figures of one operator process, in KiB.
#[derive(Default)]
pub struct Rss {
    /// VmHWM read just before SIGTERM.
    pub hwm_kib: Option<u64>,
    /// The highest VmRSS of the 200 ms samples.
    pub sampled_peak_kib: u64,
    /// VmRSS read just before SIGTERM.
    pub last_kib: Option<u64>,
    /// How the process ended.
    pub exit: String,
}

impl Operator {
    /// Starts `patchbay run` (the binary of this build) on `kubeconfig` with root namespace
    /// [`ROOT`] and the chart's allocator settings ([`CHART_MALLOC_ENV`]), logging to `log` at
    /// `rust_log`; `on_rss` gets every 200 ms RSS sample.
    pub fn start(
        kubeconfig: &Path,
        log: &Path,
        rust_log: &str,
        on_rss: impl Fn(u64) + Send + 'static,
    ) -> Result<Self, BoxError> {
        let log_file = std::fs::File::create(log)?;
        let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        // PATCHBAY_BENCH_WRAP runs the operator under a profiler, e.g. `heaptrack -o FILE`
        // (the RSS figures are then the wrapper's, not the operator's).
        let wrap = std::env::var("PATCHBAY_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(env!("CARGO_BIN_EXE_patchbay"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_patchbay")),
        };
        let child = command
            .args(["run", "--root-namespace", ROOT])
            .args(["--http-address", &http.to_string()])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", rust_log)
            .envs(CHART_MALLOC_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()?;
        let pid = child.id();
        let sampler_stop = Arc::new(AtomicBool::new(false));
        let peak_rss_kib = Arc::new(AtomicU64::new(0));
        let (stop, peak) = (sampler_stop.clone(), peak_rss_kib.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = proc_status_kib(pid, "VmRSS") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                    on_rss(rss);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Ok(Self {
            child,
            pid,
            started: Instant::now(),
            log: log.to_path_buf(),
            http,
            sampler_stop,
            peak_rss_kib,
        })
    }

    /// The highest VmRSS sampled so far.
    pub fn peak_kib(&self) -> u64 {
        self.peak_rss_kib.load(Ordering::Relaxed)
    }

    /// VmRSS now.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmRSS")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How many VcsAuthToken reconciles the operator has finished (its /metrics).
    pub async fn reconciled(&self) -> Option<u64> {
        let url = format!("http://{}/metrics", self.http);
        let body = reqwest::get(url).await.ok()?.text().await.ok()?;
        let total = body
            .lines()
            .filter(|l| l.starts_with("patchbay_reconciles_total{"))
            .filter(|l| l.contains("controller=\"vcsauthtoken\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        Some(total as u64)
    }

    /// Since start: when the operator had reconciled `n` tokens (every token looked at once);
    /// None when that took longer than `timeout`.
    pub async fn wait_reconciled(&self, n: u64, timeout: Duration) -> Option<Duration> {
        while self.started.elapsed() < timeout {
            if self.reconciled().await.is_some_and(|done| done >= n) {
                return Some(self.started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// SIGKILL: the process ends at once, whatever it was doing.
    pub fn kill(mut self) {
        self.sampler_stop.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Reads the memory figures, sends SIGTERM and waits (up to 10 s, then SIGKILL).
    pub fn stop(mut self) -> Rss {
        let hwm_kib = proc_status_kib(self.pid, "VmHWM");
        let last_kib = proc_status_kib(self.pid, "VmRSS");
        self.sampler_stop.store(true, Ordering::Relaxed);
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break format!("exited after SIGTERM ({status})"),
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break "did not exit within 10 s of SIGTERM; killed".to_string();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => break format!("wait failed: {e}"),
            }
        };
        Rss {
            hwm_kib,
            sampled_peak_kib: self.peak_rss_kib.load(Ordering::Relaxed),
            last_kib,
            exit,
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // A harness that fails halfway leaves no operator behind.
        self.sampler_stop.store(true, Ordering::Relaxed);
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Whether a token's Ready condition is True.
pub fn is_ready(t: &VcsAuthToken) -> bool {
    t.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
    })
}

/// How many tokens of the cluster are Ready.
pub async fn count_ready(client: &Client) -> Result<usize, kube::Error> {
    let api: Api<VcsAuthToken> = Api::all(client.clone());
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|t| is_ready(t))
        .count())
}
