//! Token benchmark: the release operator, as its own process, minting GitHub App installation
//! tokens for many VcsAuthTokens at once, against the in-process Kubernetes API emulator and the
//! GitHub simulator.
//!
//! `cargo bench --bench tokens [-- --tokens N --namespaces M]` (defaults 1,000 over 100).
//!
//! ```text
//!   this process: Emulator (127.0.0.1) ◀──kubeconfig── patchbay run (child process)
//!                 GithubSim (GHES)      ◀──HTTP─────────┘
//!                 poller: lists VcsAuthTokens every 250 ms, samples the child's RSS
//! ```
//!
//! Phases: seed (namespace `ci` with the App key Secret and a githubApp Connection, M child
//! namespaces, N tokens of one repository each); start the operator and wait until every token
//! is Ready=True; wait until the emulator has seen no writes for a while; stop the operator with
//! SIGTERM; start it again on the same cluster and wait until it has settled. Prints figures,
//! never asserts on them.

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
use testkit::apiserver::{Counters, Emulator, EmulatorOptions};
use testkit::github::{AccountType, AppSpec, GithubSim, InstallationSpec, SimConfig};
use testkit::keys::RsaKey;

const ROOT: &str = "ci";
const APP_ID: u64 = 4242;
const REPOS: [&str; 4] = ["app", "lib", "docs", "infra"];
/// Concurrency of the seeding client.
const SEED_CONCURRENCY: usize = 32;
/// Give up when not every token is Ready after this long.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// "Settled": this long without a single write reaching the emulator.
const QUIET: Duration = Duration::from_secs(15);
/// Give up waiting for quiet after this long, counted from the start of the wait (reported, not
/// fatal).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(180);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    tokens: usize,
    namespaces: usize,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        tokens: 1_000,
        namespaces: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--tokens" => args.tokens = it.next().ok_or("--tokens needs a number")?.parse()?,
            "--namespaces" => {
                args.namespaces = it.next().ok_or("--namespaces needs a number")?.parse()?
            }
            // `cargo bench` passes `--bench` to every bench binary; other flags are libtest's.
            _ => {}
        }
    }
    if args.tokens == 0 || args.namespaces == 0 {
        return Err("--tokens and --namespaces must be at least 1".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let machine = Machine::detect();
    eprintln!(
        "tokens benchmark: {} VcsAuthTokens over {} namespaces; {}",
        args.tokens,
        args.namespaces,
        machine.describe()
    );

    let emu = Emulator::start(EmulatorOptions {
        // Room for every change of a 10,000-token run, so a re-watch never has to relist.
        history_window: 500_000,
        ..Default::default()
    })
    .await?;
    let dir = std::env::temp_dir().join(format!("patchbay-bench-tokens-{}", std::process::id()));
    let kubeconfig = dir.join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig)?;
    let client = emu.client();
    install_crds(&client).await?;

    let sim = GithubSim::start(SimConfig {
        token_lifetime: Duration::from_secs(3_600),
        // One bucket for the whole run: GitHub's 5,000/h would stop a 10,000-token run halfway.
        rate_limit: 1_000_000,
        ..SimConfig::default()
    })
    .await?;
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

    let seeded = Instant::now();
    seed(&client, &sim, &key, &args).await?;
    eprintln!(
        "seeded {} namespaces and {} tokens in {:.1} s",
        args.namespaces + 1,
        args.tokens,
        seeded.elapsed().as_secs_f64()
    );

    // Phase 1: a fresh operator against N unminted tokens.
    emu.reset_counters();
    sim.reset_counters();
    let first = Operator::start(&kubeconfig, &dir.join("operator-1.log"))?;
    let ready = wait_all_ready(&client, &emu, &sim, &first, args.tokens).await;
    let at_ready = Snapshot::take(&emu, &sim);
    let Some(ready_after) = ready else {
        let log = first.log.clone();
        let rss = first.stop();
        print_partial(&args, &machine, &at_ready, &rss, &log);
        return Err(format!(
            "not every VcsAuthToken was Ready after {} s; operator log: {}",
            READY_TIMEOUT.as_secs(),
            log.display()
        )
        .into());
    };
    let settle1 = wait_settled(&emu, &first).await;
    let at_settle = Snapshot::take(&emu, &sim);
    let rss1 = first.stop();

    // Phase 2: the same cluster, a restarted operator, every token still valid for ~1 h.
    emu.reset_counters();
    sim.reset_counters();
    let second = Operator::start(&kubeconfig, &dir.join("operator-2.log"))?;
    let settle2 = wait_settled(&emu, &second).await;
    let after_restart = Snapshot::take(&emu, &sim);
    let still_ready = count_ready(&client).await.unwrap_or(0);
    let rss2 = second.stop();

    let report = Report {
        args: &args,
        machine: &machine,
        ready_after,
        at_ready: &at_ready,
        settle1: &settle1,
        at_settle: &at_settle,
        rss1: &rss1,
        settle2: &settle2,
        after_restart: &after_restart,
        rss2: &rss2,
        still_ready,
    };
    report.print();
    sim.shutdown().await;
    emu.shutdown().await;
    eprintln!("operator logs kept in {}", dir.display());
    Ok(())
}

async fn install_crds(client: &Client) -> Result<(), BoxError> {
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

/// `ci` with the App key and the Connection; `team-0..M` under it; tokens `tok-0..N` spread
/// round-robin, each asking for one repository.
async fn seed(client: &Client, sim: &GithubSim, key: &RsaKey, args: &Args) -> Result<(), BoxError> {
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ROOT}}))?,
    )
    .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ROOT);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "acme-github-app"},
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
                "metadata": {"name": "acme-github", "namespace": ROOT},
                "spec": {"githubApp": {
                    "serverUrl": sim.ghes_url(), "appId": APP_ID.to_string(),
                    "privateKey": {"name": "acme-github-app", "key": "private-key.pem"},
                    "ownerUrl": format!("{}/acme", sim.ghes_url()),
                }},
            }))?,
        )
        .await?;

    stream::iter(0..args.namespaces)
        .map(|i| {
            let nss = nss.clone();
            async move {
                let ns: Namespace = serde_json::from_value(json!({"metadata": {
                    "name": format!("team-{i}"), "labels": {PARENT_LABEL: ROOT},
                }}))?;
                nss.create(&PostParams::default(), &ns).await?;
                Ok::<_, BoxError>(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;

    stream::iter(0..args.tokens)
        .map(|i| {
            let namespace = format!("team-{}", i % args.namespaces);
            let api: Api<VcsAuthToken> = Api::namespaced(client.clone(), &namespace);
            async move {
                let token: VcsAuthToken = serde_json::from_value(json!({
                    "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
                    "metadata": {"name": format!("tok-{i}"), "namespace": namespace},
                    "spec": {
                        "connection": "acme-github",
                        "github": {"repositories": [REPOS[i % REPOS.len()]]},
                    },
                }))?;
                api.create(&PostParams::default(), &token).await?;
                Ok::<_, BoxError>(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// The operator as a child process, with an RSS sampler.
struct Operator {
    child: Child,
    pid: u32,
    started: Instant,
    log: PathBuf,
    sampler_stop: Arc<AtomicBool>,
    peak_rss_kib: Arc<AtomicU64>,
}

/// Memory figures of one operator process, in KiB.
#[derive(Default)]
struct Rss {
    /// VmHWM read just before SIGTERM.
    hwm_kib: Option<u64>,
    /// The highest VmRSS of the 200 ms samples.
    sampled_peak_kib: u64,
    /// VmRSS read just before SIGTERM.
    last_kib: Option<u64>,
    /// How the process ended.
    exit: String,
}

impl Operator {
    fn start(kubeconfig: &Path, log: &Path) -> Result<Self, BoxError> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args(["run", "--root-namespace", ROOT])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "warn")
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
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        eprintln!("operator started (pid {pid}, log {})", log.display());
        Ok(Self {
            child,
            pid,
            started: Instant::now(),
            log: log.to_path_buf(),
            sampler_stop,
            peak_rss_kib,
        })
    }

    /// Reads the memory figures, sends SIGTERM and waits (up to 10 s, then SIGKILL).
    fn stop(mut self) -> Rss {
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
        eprintln!("operator pid {}: {exit}", self.pid);
        Rss {
            hwm_kib,
            sampled_peak_kib: self.peak_rss_kib.load(Ordering::Relaxed),
            last_kib,
            exit,
        }
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn is_ready(t: &VcsAuthToken) -> bool {
    t.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
    })
}

async fn count_ready(client: &Client) -> Result<usize, kube::Error> {
    let api: Api<VcsAuthToken> = Api::all(client.clone());
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|t| is_ready(t))
        .count())
}

/// Polls until every token is Ready; the time since the operator started, or None on timeout.
async fn wait_all_ready(
    client: &Client,
    emu: &Emulator,
    sim: &GithubSim,
    operator: &Operator,
    total: usize,
) -> Option<Duration> {
    let mut last_progress = Instant::now();
    loop {
        let elapsed = operator.started.elapsed();
        let ready = match count_ready(client).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("listing VcsAuthTokens failed: {e}");
                0
            }
        };
        if ready >= total {
            eprintln!(
                "all {total} Ready after {:.2} s",
                operator.started.elapsed().as_secs_f64()
            );
            return Some(operator.started.elapsed());
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            eprintln!(
                "  {:>6.1} s: {ready}/{total} Ready, {} mints, {} provider calls, {} API writes, RSS {} MiB",
                elapsed.as_secs_f64(),
                sim.mint_count(),
                sim.total_calls(),
                writes(&emu.counters()).0,
                proc_status_kib(operator.pid, "VmRSS").unwrap_or(0) / 1024,
            );
        }
        if elapsed > READY_TIMEOUT {
            eprintln!(
                "ABORT: only {ready}/{total} VcsAuthTokens Ready after {} s",
                READY_TIMEOUT.as_secs()
            );
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How an operator settled: when its caches had listed, and when writes stopped.
struct Settle {
    /// Since operator start: when this wait first saw a list or watch of VcsAuthTokens counted.
    watching_after: Option<Duration>,
    /// Since operator start: the last write before the quiet period, if any.
    last_write_after: Option<Duration>,
    /// Since operator start: the end of the quiet period; None when it never came.
    settled_after: Option<Duration>,
    /// Whether the process died on its own meanwhile.
    exited: bool,
}

impl Settle {
    fn describe(&self) -> String {
        let secs =
            |d: Option<Duration>| d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()));
        let verdict = match (self.exited, self.settled_after) {
            (true, _) => "the operator EXITED".to_string(),
            (false, Some(at)) => format!("settled at {}", secs(Some(at))),
            (false, None) => format!(
                "NOT settled: still writing when the {} s wait ran out",
                SETTLE_TIMEOUT.as_secs()
            ),
        };
        format!(
            "{verdict} ({} s without writes once VcsAuthTokens are watched; watch seen at {}, last write at {}; times since operator start)",
            QUIET.as_secs(),
            secs(self.watching_after),
            secs(self.last_write_after),
        )
    }
}

/// Waits until the operator watches VcsAuthTokens and then QUIET passes with no write.
async fn wait_settled(emu: &Emulator, operator: &Operator) -> Settle {
    let mut settle = Settle {
        watching_after: None,
        last_write_after: None,
        settled_after: None,
        exited: false,
    };
    let resource = "vcsauthtokens.patchbay.dev";
    let mut last_writes = writes(&emu.counters()).0;
    let waiting = Instant::now();
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let counters = emu.counters();
        let now_writes = writes(&counters).0;
        if now_writes != last_writes {
            last_writes = now_writes;
            quiet_since = Instant::now();
            settle.last_write_after = Some(operator.started.elapsed());
        }
        if settle.watching_after.is_none()
            && counters.get("watch", resource) + counters.get("list", resource) > 0
        {
            settle.watching_after = Some(operator.started.elapsed());
            if settle.last_write_after.is_none() {
                quiet_since = Instant::now();
            }
        }
        if !Path::new(&format!("/proc/{}", operator.pid)).exists() {
            settle.exited = true;
            return settle;
        }
        if settle.watching_after.is_some() && quiet_since.elapsed() >= QUIET {
            settle.settled_after = Some(operator.started.elapsed());
            return settle;
        }
        if waiting.elapsed() > SETTLE_TIMEOUT {
            return settle;
        }
    }
}

/// Sum of writes and the per (verb, resource) breakdown.
fn writes(c: &Counters) -> (u64, BTreeMap<String, u64>) {
    let mut by_kind = BTreeMap::new();
    let mut total = 0;
    for (kind, n) in &c.0 {
        if matches!(
            kind.verb,
            "create" | "update" | "patch" | "apply" | "delete" | "deletecollection"
        ) {
            total += n;
            *by_kind
                .entry(format!("{} {}", kind.verb, kind.resource))
                .or_default() += n;
        }
    }
    (total, by_kind)
}

fn reads(c: &Counters) -> BTreeMap<String, u64> {
    c.0.iter()
        .filter(|(k, _)| matches!(k.verb, "get" | "list" | "watch"))
        .map(|(k, n)| (format!("{} {}", k.verb, k.resource), *n))
        .collect()
}

/// Counters of both servers at one moment.
struct Snapshot {
    counters: Counters,
    provider_calls: u64,
    mints: u64,
    revokes: u64,
    provider_by_route: BTreeMap<String, u64>,
}

impl Snapshot {
    fn take(emu: &Emulator, sim: &GithubSim) -> Self {
        Self {
            counters: emu.counters(),
            provider_calls: sim.total_calls(),
            mints: sim.mint_count(),
            revokes: sim.revoke_count(),
            provider_by_route: sim.all_calls(),
        }
    }
}

struct Machine {
    cpus: usize,
    kernel: String,
    profile: &'static str,
    load_at_start: String,
}

impl Machine {
    fn detect() -> Self {
        let kernel = Command::new("uname")
            .arg("-r")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel,
            // The operator binary is built with the same profile as this bench binary.
            profile: if cfg!(debug_assertions) {
                "debug assertions on (not an optimised build)"
            } else {
                "bench (inherits release)"
            },
            load_at_start: load_average(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} CPUs, Linux {}, profile {}, load average {}",
            self.cpus, self.kernel, self.profile, self.load_at_start
        )
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("not measured".into(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}

fn per(n: u64, d: u64) -> String {
    if d == 0 {
        format!("{n} (no mints)")
    } else {
        format!("{:.2}", n as f64 / d as f64)
    }
}

fn print_rows(title: &str, rows: &BTreeMap<String, u64>) {
    println!("  {title}:");
    if rows.is_empty() {
        println!("    (none)");
    }
    for (k, n) in rows {
        println!("    {k:<58} {n:>8}");
    }
}

fn print_partial(args: &Args, machine: &Machine, at: &Snapshot, rss: &Rss, log: &Path) {
    let (w, by) = writes(&at.counters);
    println!(
        "\n== tokens benchmark: ABORTED (not all Ready within {} s) ==",
        READY_TIMEOUT.as_secs()
    );
    println!(
        "  tokens / namespaces        {} / {}",
        args.tokens, args.namespaces
    );
    println!("  machine                    {}", machine.describe());
    println!(
        "  mints / provider calls     {} / {}",
        at.mints, at.provider_calls
    );
    println!("  Kubernetes API writes      {w}");
    print_rows("writes by verb and resource", &by);
    println!("  operator peak RSS (VmHWM)  {}", mib(rss.hwm_kib));
    println!("  operator log               {}", log.display());
}

struct Report<'a> {
    args: &'a Args,
    machine: &'a Machine,
    ready_after: Duration,
    at_ready: &'a Snapshot,
    settle1: &'a Settle,
    at_settle: &'a Snapshot,
    rss1: &'a Rss,
    settle2: &'a Settle,
    after_restart: &'a Snapshot,
    rss2: &'a Rss,
    still_ready: usize,
}

impl Report<'_> {
    fn print(&self) {
        let n = self.args.tokens as u64;
        let (w_ready, _) = writes(&self.at_ready.counters);
        let (w_settle, by_settle) = writes(&self.at_settle.counters);
        let (w_restart, by_restart) = writes(&self.after_restart.counters);
        let secs = self.ready_after.as_secs_f64();
        println!("\n== tokens benchmark ==");
        println!(
            "machine: {}; load average at end {}",
            self.machine.describe(),
            load_average()
        );
        println!(
            "operator: {} (separate process, RUST_LOG=warn)",
            env!("CARGO_BIN_EXE_patchbay")
        );
        println!();
        println!("| figure | value |");
        println!("|---|---|");
        println!(
            "| VcsAuthTokens / namespaces | {} / {} |",
            self.args.tokens, self.args.namespaces
        );
        println!("| time from operator start until all Ready | {secs:.2} s |");
        println!("| tokens Ready per second | {:.0} |", n as f64 / secs);
        println!("| operator peak RSS (VmHWM) | {} |", mib(self.rss1.hwm_kib));
        println!(
            "| operator peak RSS (VmRSS, 200 ms samples) | {} |",
            mib(Some(self.rss1.sampled_peak_kib))
        );
        println!(
            "| mints (POST access_tokens) at all-Ready | {} |",
            self.at_ready.mints
        );
        println!(
            "| provider calls at all-Ready | {} |",
            self.at_ready.provider_calls
        );
        println!(
            "| provider calls per token | {} |",
            per(self.at_ready.provider_calls, n)
        );
        println!(
            "| provider calls per token, until settled | {} |",
            per(self.at_settle.provider_calls, n)
        );
        println!(
            "| mints / revocations until settled | {} / {} |",
            self.at_settle.mints, self.at_settle.revokes
        );
        println!("| Kubernetes API writes at all-Ready | {w_ready} |");
        println!(
            "| Kubernetes API writes per mint at all-Ready | {} |",
            per(w_ready, self.at_ready.mints)
        );
        println!("| Kubernetes API writes until settled | {w_settle} |");
        println!(
            "| Kubernetes API writes per mint until settled | {} |",
            per(w_settle, self.at_settle.mints)
        );
        println!("| first run settled | {} |", self.settle1.describe());
        println!("| first run shutdown | {} |", self.rss1.exit);
        println!(
            "| restart: provider calls | {} |",
            self.after_restart.provider_calls
        );
        println!("| restart: mints | {} |", self.after_restart.mints);
        println!("| restart: Kubernetes API writes | {w_restart} |");
        println!(
            "| restart: tokens still Ready | {}/{} |",
            self.still_ready, n
        );
        println!("| restart: settled | {} |", self.settle2.describe());
        println!(
            "| restart: operator peak RSS (VmHWM) | {} |",
            mib(self.rss2.hwm_kib)
        );
        println!(
            "| restart: operator RSS when stopped | {} |",
            mib(self.rss2.last_kib)
        );
        println!("| restart: shutdown | {} |", self.rss2.exit);
        println!();
        print_rows(
            "Kubernetes API writes until settled (first run)",
            &by_settle,
        );
        print_rows(
            "Kubernetes API reads until settled (first run)",
            &reads(&self.at_settle.counters),
        );
        print_rows(
            "provider calls until settled (first run)",
            &self.at_settle.provider_by_route,
        );
        print_rows("Kubernetes API writes after the restart", &by_restart);
        print_rows(
            "Kubernetes API reads after the restart",
            &reads(&self.after_restart.counters),
        );
        print_rows(
            "provider calls after the restart",
            &self.after_restart.provider_by_route,
        );
    }
}
