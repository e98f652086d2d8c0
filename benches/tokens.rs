//! Token benchmark: the release operator, as its own process, minting GitHub App installation
//! tokens for many VcsAuthTokens at once, against the in-process Kubernetes API emulator (or,
//! with `--server apiserver`, a real kube-apiserver and etcd) and the GitHub simulator.
//!
//! `cargo bench --bench tokens [-- --tokens N --namespaces M --chart FILE.svg --server
//! emulator|apiserver]` (defaults 1,000 over 100, the emulator).
//!
//! ```text
//!   this process: API server          ◀──kubeconfig── patchbay run (child process)
//!                 GithubSim (GHES)      ◀──HTTP─────────┘
//!                 observer: counts Ready VcsAuthTokens by a watch, samples the child's
//!                 RSS and the CPU time of every process, reads the child's /metrics
//! ```
//!
//! Phases: seed (namespace `ci` with the App key Secret and a githubApp Connection, M namespaces
//! three levels deep, N tokens of one repository each); start the operator and wait until every
//! token is Ready=True; wait until the emulator has seen no writes for a while; stop the
//! operator with SIGTERM; start it again on the same cluster and wait until it has settled; add
//! unrelated 32 KiB Secrets and watch the operator's memory; apply tokens at a steady rate and
//! time each until its Secret appears; relabel one namespace and annotate the root and count
//! what was reconciled. Prints every figure next to its target with a pass/fail column, and
//! with `--chart` draws RSS and the Ready count over time into an SVG image. Never asserts.

#[path = "../tests/support/fleet.rs"]
mod fleet;
#[path = "tokens/observe.rs"]
mod observe;
#[path = "tokens/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet::{
    APP_ID, BoxError, Operator, ROOT, Rss, count_ready, create_all, create_namespace, install_crds,
    proc_status_kib, seed,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::api::{Api, PostParams};
use observe::{Cpu, ReadyWatch};
use patchbay::api::{PARENT_LABEL, VcsAuthToken};
use serde_json::json;
use server::Server;
use testkit::apiserver::Counters;
use testkit::github::{GithubSim, SimConfig};
use testkit::keys::RsaKey;

/// Give up when not every token is Ready after this long.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// "Settled": this long without a single write reaching the emulator.
const QUIET: Duration = Duration::from_secs(15);
/// Give up waiting for quiet after this long, counted from the start of the wait (reported, not
/// fatal).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(180);

/// The targets every figure is printed next to (issue "Scale and faults").
const READY_TARGET: Duration = Duration::from_secs(60);
const RSS_STEADY_TARGET_MIB: f64 = 64.0;
const RSS_PEAK_TARGET_MIB: f64 = 96.0;
const RESTART_TARGET: Duration = Duration::from_secs(10);
const UNRELATED_TARGET_MIB: f64 = 5.0;
const WRITES_PER_MINT_TARGET: f64 = 2.0;
/// Writes of a whole run that do not come with a mint (the Connection's status, its Events):
/// a handful, however many tokens.
const FIXED_WRITES: u64 = 10;
/// Secrets a restart reads: the App key (once, while every other read of it waits; once more
/// when that read overlapped the Secret watch's first list). No output Secret the watch reports
/// as the last mint wrote it.
const RESTART_SECRET_GETS: u64 = 2;
const P50_TARGET_MS: f64 = 20.0;
const P99_TARGET_MS: f64 = 100.0;

struct Args {
    tokens: usize,
    namespaces: usize,
    /// Unrelated Secrets added once the restarted operator has settled.
    unrelated_secrets: usize,
    /// Tokens applied one by one, at `rate` per second, for the latency figures.
    latency_tokens: usize,
    rate: f64,
    /// Where to draw the RSS and Ready chart (SVG).
    chart: Option<PathBuf>,
    /// Run against a real kube-apiserver instead of the emulator (`--server apiserver`).
    real_server: bool,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        tokens: 1_000,
        namespaces: 100,
        unrelated_secrets: 0,
        latency_tokens: 500,
        rate: 50.0,
        chart: None,
        real_server: false,
    };
    let mut unrelated = None;
    let mut it = std::env::args().skip(1);
    let number = |it: &mut std::iter::Skip<std::env::Args>, flag: &str| {
        it.next()
            .ok_or(format!("{flag} needs a number"))?
            .parse::<usize>()
            .map_err(|e| format!("{flag}: {e}"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--tokens" => args.tokens = number(&mut it, "--tokens")?,
            "--namespaces" => args.namespaces = number(&mut it, "--namespaces")?,
            "--unrelated-secrets" => unrelated = Some(number(&mut it, "--unrelated-secrets")?),
            "--latency-tokens" => args.latency_tokens = number(&mut it, "--latency-tokens")?,
            "--rate" => args.rate = number(&mut it, "--rate")? as f64,
            "--chart" => args.chart = Some(it.next().ok_or("--chart needs a file")?.into()),
            "--server" => match it.next().as_deref() {
                Some("emulator") => args.real_server = false,
                Some("apiserver") => args.real_server = true,
                _ => return Err("--server takes emulator or apiserver".into()),
            },
            // `cargo bench` passes `--bench` to every bench binary; other flags are libtest's.
            _ => {}
        }
    }
    if args.tokens == 0 || args.namespaces == 0 || args.rate <= 0.0 {
        return Err("--tokens, --namespaces and --rate must be at least 1".into());
    }
    // As many unrelated Secrets as tokens, unless told otherwise.
    args.unrelated_secrets = unrelated.unwrap_or(args.tokens);
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

    let server = Server::start(args.real_server, UNRELATED).await?;
    eprintln!("API server: {}", server.describe());
    let malloc: Vec<String> = (fleet::CHART_MALLOC_ENV.iter())
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    eprintln!("operator environment: {} (the chart's)", malloc.join(" "));
    let dir = std::env::temp_dir().join(format!("patchbay-bench-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    server.write_operator_kubeconfig(&kubeconfig)?;
    let client = server.client();
    install_crds(&client).await?;

    let (sim, key) = fleet::github(SimConfig {
        token_lifetime: Duration::from_secs(3_600),
        // One bucket for the whole run: GitHub's 5,000/h would stop a 10,000-token run halfway.
        rate_limit: 1_000_000,
        ..SimConfig::default()
    })
    .await?;

    // As where the chart is installed (Kubernetes 1.36 and later): each token is created with
    // its revocation finalizer. Only on the real server; the emulator has no admission.
    let finalizer_at_admission = server.admit_finalizer("default").await?;

    let seeded = Instant::now();
    seed(&client, &sim, &key, args.tokens, args.namespaces).await?;
    eprintln!(
        "seeded {} namespaces and {} tokens in {:.1} s",
        args.namespaces + 1,
        args.tokens,
        seeded.elapsed().as_secs_f64()
    );

    // Phase 1: a fresh operator against N unminted tokens.
    let timeline = Timeline::default();
    let ready_watch = ReadyWatch::start(&client);
    if !ready_watch.listed(Duration::from_secs(60)).await {
        return Err("the watch of VcsAuthTokens did not list them within 60 s".into());
    }
    server.reset_counters().await;
    sim.reset_counters();
    let cpu_at_start = Cpu::now();
    let first = start_operator(&kubeconfig, &dir.join("operator-1.log"), &timeline)?;
    timeline.mark("operator started");
    let ready = wait_all_ready(&ready_watch, &server, &sim, &first, args.tokens, &timeline).await;
    let cpu_to_ready = Cpu::now().since(&cpu_at_start);
    // Only this phase counts Ready by the watch; no later phase pays for it.
    drop(ready_watch);
    let at_ready = Snapshot::take(&server, &sim).await;
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
    let settle1 = wait_settled(&server, &first).await;
    let at_settle = Snapshot::take(&server, &sim).await;
    let rss1 = first.stop();

    // Phase 2: the same cluster, a restarted operator, every token still valid for ~1 h.
    server.reset_counters().await;
    sim.reset_counters();
    timeline.mark("restart");
    let cpu_at_restart = Cpu::now();
    let second = start_operator(&kubeconfig, &dir.join("operator-2.log"), &timeline)?;
    let taken_over = second
        .wait_reconciled(args.tokens as u64, SETTLE_TIMEOUT)
        .await;
    let cpu_to_taken_over = Cpu::now().since(&cpu_at_restart);
    let settle2 = wait_settled(&server, &second).await;
    let after_restart = Snapshot::take(&server, &sim).await;
    let still_ready = count_ready(&client).await.unwrap_or(0);
    timeline.ready(still_ready);
    let steady2 = second.rss_kib();
    let peak2 = second.peak_kib();

    // Phase 3: unrelated Secrets appear; the operator should not hold them.
    timeline.mark("unrelated Secrets");
    let unrelated = unrelated_secrets(&client, &server, &second, args.unrelated_secrets).await?;

    // Phase 4: tokens applied one by one at a steady rate.
    timeline.mark("steady applies");
    let latency = latency(&client, &server, &sim, &key, &second, &args).await?;

    // Phase 5: a relabel and an annotation; what each wakes.
    timeline.mark("relabel");
    let wakes = wakes(&client, &server, &second, &args).await?;
    let rss2 = second.stop();

    let report = Report {
        args: &args,
        server: server.describe(),
        finalizer_at_admission,
        machine: &machine,
        ready_after,
        cpu_to_ready: &cpu_to_ready,
        at_ready: &at_ready,
        settle1: &settle1,
        at_settle: &at_settle,
        rss1: &rss1,
        taken_over,
        cpu_to_taken_over: &cpu_to_taken_over,
        settle2: &settle2,
        after_restart: &after_restart,
        steady2,
        peak2,
        rss2: &rss2,
        still_ready,
        unrelated: &unrelated,
        latency: &latency,
        wakes: &wakes,
    };
    report.print();
    if let Some(chart) = &args.chart {
        std::fs::write(chart, timeline.svg(&args))?;
        eprintln!("chart written to {}", chart.display());
    }
    sim.shutdown().await;
    server.shutdown().await;
    eprintln!("operator logs kept in {}", dir.display());
    Ok(())
}

/// Starts the operator, its RSS samples going into the timeline.
fn start_operator(
    kubeconfig: &Path,
    log: &Path,
    timeline: &Timeline,
) -> Result<Operator, BoxError> {
    let samples = timeline.clone();
    // PATCHBAY_BENCH_LOG: the operator's RUST_LOG (default `warn`), e.g. to see why it
    // reconciles (`kube_runtime=debug`).
    let level = std::env::var("PATCHBAY_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let operator = Operator::start(kubeconfig, log, &level, move |kib| samples.rss(kib))?;
    eprintln!(
        "operator started (pid {}, log {})",
        operator.pid,
        log.display()
    );
    Ok(operator)
}

/// Polls until every token is Ready; the time since the operator started, or None on timeout.
async fn wait_all_ready(
    ready_watch: &ReadyWatch,
    server: &Server,
    sim: &GithubSim,
    operator: &Operator,
    total: usize,
    timeline: &Timeline,
) -> Option<Duration> {
    let mut last_progress = Instant::now();
    loop {
        let elapsed = operator.started.elapsed();
        let ready = ready_watch.ready().unwrap_or(0);
        timeline.ready(ready);
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
                writes(&server.counters().await).0,
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
async fn wait_settled(server: &Server, operator: &Operator) -> Settle {
    settle(server, operator, Watching::Soon).await
}

/// Whether the operator a settle waits for watches VcsAuthTokens yet.
#[derive(Clone, Copy, PartialEq)]
enum Watching {
    /// Just started: quiet counts once its list or watch of them is seen.
    Soon,
    /// Running since an earlier phase: quiet counts from the start.
    Already,
}

/// Like [`wait_settled`], for an operator that has watched VcsAuthTokens since an earlier
/// phase (its watches were counted before the counters' last reset, if at all: the real
/// server counts a watch when it ends).
async fn wait_settled_running(server: &Server, operator: &Operator) -> Settle {
    settle(server, operator, Watching::Already).await
}

async fn settle(server: &Server, operator: &Operator, watching: Watching) -> Settle {
    let mut settle = Settle {
        watching_after: (watching == Watching::Already).then(|| operator.started.elapsed()),
        last_write_after: None,
        settled_after: None,
        exited: false,
    };
    let resource = "vcsauthtokens.patchbay.dev";
    let mut last_writes = writes(&server.counters().await).0;
    let waiting = Instant::now();
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let counters = server.counters().await;
        let now_writes = writes(&counters).0;
        if now_writes != last_writes {
            last_writes = now_writes;
            quiet_since = Instant::now();
            settle.last_write_after = Some(operator.started.elapsed());
        }
        // The real server counts a watch in its metrics when the watch ends; its audit log
        // has the operator's streamed list when its answer starts.
        let audited = server.operator_requests().unwrap_or_default();
        let listed = |c: &Counters| c.get("watch", resource) + c.get("list", resource);
        if settle.watching_after.is_none() && listed(&counters) + listed(&audited) > 0 {
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
    jwts: u64,
    provider_by_route: BTreeMap<String, u64>,
}

impl Snapshot {
    async fn take(server: &Server, sim: &GithubSim) -> Self {
        Self {
            counters: server.counters().await,
            provider_calls: sim.total_calls(),
            mints: sim.mint_count(),
            revokes: sim.revoke_count(),
            jwts: sim.distinct_jwts(),
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

/// RSS samples, Ready counts and phase marks over the whole run, for the chart.
#[derive(Clone)]
struct Timeline(Arc<std::sync::Mutex<Samples>>);

struct Samples {
    start: Instant,
    /// (seconds since start, VmRSS KiB)
    rss: Vec<(f64, u64)>,
    /// (seconds since start, tokens Ready)
    ready: Vec<(f64, usize)>,
    /// (seconds since start, what began)
    marks: Vec<(f64, &'static str)>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self(Arc::new(std::sync::Mutex::new(Samples {
            start: Instant::now(),
            rss: Vec::new(),
            ready: Vec::new(),
            marks: Vec::new(),
        })))
    }
}

impl Timeline {
    fn with<T>(&self, f: impl FnOnce(&mut Samples) -> T) -> T {
        let mut samples = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut samples)
    }

    fn rss(&self, kib: u64) {
        self.with(|s| {
            let t = s.start.elapsed().as_secs_f64();
            s.rss.push((t, kib));
        });
    }

    fn ready(&self, n: usize) {
        self.with(|s| {
            let t = s.start.elapsed().as_secs_f64();
            s.ready.push((t, n));
        });
    }

    fn mark(&self, what: &'static str) {
        self.with(|s| {
            let t = s.start.elapsed().as_secs_f64();
            s.marks.push((t, what));
        });
    }

    /// An SVG chart: RSS (MiB, left axis, with the 64 and 96 MiB targets dashed) and tokens
    /// Ready (right axis) against seconds, with the phases marked.
    fn svg(&self, args: &Args) -> String {
        self.with(|s| {
            let (w, h, left, right, top, bottom) = (960.0, 420.0, 60.0, 70.0, 40.0, 40.0);
            let t_max = (s.rss.iter().map(|r| r.0))
                .chain(s.ready.iter().map(|r| r.0))
                .fold(1.0_f64, f64::max);
            let mib_max = (s.rss.iter().map(|r| r.1 as f64 / 1024.0))
                .fold(RSS_PEAK_TARGET_MIB, f64::max)
                * 1.1;
            let ready_max = (args.tokens + args.latency_tokens).max(1) as f64;
            let x = |t: f64| left + t / t_max * (w - left - right);
            let y_mib = |m: f64| h - bottom - m / mib_max * (h - top - bottom);
            let y_ready = |n: f64| h - bottom - n / ready_max * (h - top - bottom);
            let mut out = format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
                 font-family=\"sans-serif\" font-size=\"12\">\n\
                 <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
                 <text x=\"{left}\" y=\"20\" font-size=\"14\">patchbay: operator RSS and \
                 VcsAuthTokens Ready, {} tokens over {} namespaces</text>\n",
                args.tokens, args.namespaces
            );
            let axis = |out: &mut String, x1: f64, y1: f64, x2: f64, y2: f64| {
                out.push_str(&format!(
                    "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"black\"/>\n"
                ));
            };
            axis(&mut out, left, h - bottom, w - right, h - bottom);
            axis(&mut out, left, top, left, h - bottom);
            axis(&mut out, w - right, top, w - right, h - bottom);
            for target in [RSS_STEADY_TARGET_MIB, RSS_PEAK_TARGET_MIB] {
                let y = y_mib(target);
                out.push_str(&format!(
                    "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#c0392b\" \
                     stroke-dasharray=\"6 4\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c0392b\">{target} MiB target</text>\n",
                    w - right,
                    left + 4.0,
                    y - 4.0
                ));
            }
            for i in 0..=5 {
                let m = mib_max / 5.0 * i as f64;
                let n = ready_max / 5.0 * i as f64;
                let t = t_max / 5.0 * i as f64;
                out.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#2c3e50\">{m:.0}</text>\
                     <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#27ae60\">{n:.0}</text>\
                     <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t:.0} s</text>\n",
                    left - 6.0,
                    y_mib(m) + 4.0,
                    w - right + 6.0,
                    y_ready(n) + 4.0,
                    x(t),
                    h - bottom + 16.0
                ));
            }
            for (t, what) in &s.marks {
                out.push_str(&format!(
                    "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#999\" \
                     stroke-dasharray=\"2 3\"/><text x=\"{2:.1}\" y=\"{3:.1}\" fill=\"#555\">{what}</text>\n",
                    x(*t),
                    h - bottom,
                    x(*t) + 3.0,
                    top + 12.0
                ));
            }
            let line = |points: Vec<(f64, f64)>, colour: &str| {
                let pts: Vec<String> = points
                    .iter()
                    .map(|(a, b)| format!("{a:.1},{b:.1}"))
                    .collect();
                format!(
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                    pts.join(" ")
                )
            };
            out.push_str(&line(
                s.rss.iter().map(|(t, k)| (x(*t), y_mib(*k as f64 / 1024.0))).collect(),
                "#2c3e50",
            ));
            out.push_str(&line(
                s.ready.iter().map(|(t, n)| (x(*t), y_ready(*n as f64))).collect(),
                "#27ae60",
            ));
            out.push_str(&format!(
                "<text x=\"{left}\" y=\"{:.1}\" fill=\"#2c3e50\">— RSS (MiB, left)</text>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#27ae60\">— tokens Ready (right)</text>\n</svg>\n",
                h - 6.0,
                left + 160.0,
                h - 6.0
            ));
            out
        })
    }
}

/// What unrelated Secrets did to the operator.
struct Unrelated {
    count: usize,
    before_kib: Option<u64>,
    after_kib: Option<u64>,
    /// Operator requests while they were created and after (reads and writes).
    operator_requests: u64,
    /// Those requests by verb and resource.
    requests_by_kind: BTreeMap<String, u64>,
}

/// The namespace of the unrelated Secrets.
const UNRELATED: &str = "unrelated";

/// Creates `count` unrelated 32 KiB Secrets in namespace [`UNRELATED`], lets the operator settle,
/// and measures its RSS before and after.
async fn unrelated_secrets(
    client: &Client,
    server: &Server,
    operator: &Operator,
    count: usize,
) -> Result<Unrelated, BoxError> {
    let before_kib = operator.rss_kib();
    create_namespace(client, UNRELATED, None).await?;
    let value = "x".repeat(32 * 1024);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), UNRELATED);
    server.reset_counters().await;
    create_all(count, |i| {
        let secret = json!({
            "metadata": {"name": format!("blob-{i}")},
            "stringData": {"blob": value},
        });
        Ok((secrets.clone(), serde_json::from_value(secret)?))
    })
    .await?;
    let created = server.counters().await.get("create", "secrets");
    wait_settled_running(server, operator).await;
    let (operator_requests, requests_by_kind) = match server.operator_requests() {
        // The real server's audit log: the operator's own requests only.
        Some(c) => {
            let by_kind = (c.0.iter())
                .map(|(k, n)| (format!("{} {}", k.verb, k.resource), *n))
                .collect();
            (c.0.values().sum(), by_kind)
        }
        // The emulator's counters: everything but the bench's own creates.
        None => {
            let c = server.counters().await;
            let all: u64 = c.0.values().sum();
            let operator = all.saturating_sub(created + c.get("create", "namespaces"));
            let by_kind = (c.0.iter())
                .filter(|(k, n)| {
                    **n > 0
                        && !(k.verb == "create"
                            && matches!(k.resource.as_str(), "secrets" | "namespaces"))
                })
                .map(|(k, n)| (format!("{} {}", k.verb, k.resource), *n))
                .collect();
            (operator, by_kind)
        }
    };
    Ok(Unrelated {
        count,
        before_kib,
        after_kib: operator.rss_kib(),
        operator_requests,
        requests_by_kind,
    })
}

/// Latency from applying a token to its Secret appearing, at a steady rate.
struct Latency {
    count: usize,
    rate: f64,
    /// Sorted, in milliseconds.
    ms: Vec<f64>,
    missing: usize,
    /// The simulator's own handling of one mint, median, in milliseconds.
    provider_ms: f64,
}

impl Latency {
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.ms.is_empty() {
            return None;
        }
        let i = ((self.ms.len() - 1) as f64 * q).round() as usize;
        Some(self.ms[i])
    }
}

/// Applies `latency_tokens` tokens in namespace `latency` at `rate` per second and times each
/// until the bench's watch sees its Secret.
async fn latency(
    client: &Client,
    server: &Server,
    sim: &GithubSim,
    key: &RsaKey,
    operator: &Operator,
    args: &Args,
) -> Result<Latency, BoxError> {
    create_namespace(client, "latency", Some(ROOT)).await?;
    let seen: Arc<std::sync::Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "latency");
    let watch = {
        let seen = seen.clone();
        let events = kube::runtime::watcher(secrets, kube::runtime::watcher::Config::default());
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                if let Ok(kube::runtime::watcher::Event::Apply(s)) = event {
                    let name = kube::ResourceExt::name_any(&s);
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.entry(name).or_insert_with(Instant::now);
                }
            }
        })
    };
    // Let the watch start before the first apply.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let provider_ms = sim_mint_ms(sim, key).await;
    let api: Api<VcsAuthToken> = Api::namespaced(client.clone(), "latency");
    let start = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(args.latency_tokens);
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..args.latency_tokens {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / args.rate)).await;
        let name = format!("lat-{i}");
        let token: VcsAuthToken = serde_json::from_value(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": name, "namespace": "latency"},
            "spec": {"connection": "acme-github", "github": {"repositories": ["app"]}},
        }))?;
        sent.push((name, Instant::now()));
        let api = api.clone();
        creates.spawn(async move { api.create(&PostParams::default(), &token).await });
    }
    while let Some(done) = creates.join_next().await {
        done??;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let n = seen.lock().unwrap_or_else(|e| e.into_inner()).len();
        if n >= args.latency_tokens {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watch.abort();
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut ms: Vec<f64> = sent
        .iter()
        .filter_map(|(name, at)| Some(seen.get(name)?.duration_since(*at).as_secs_f64() * 1e3))
        .collect();
    ms.sort_by(f64::total_cmp);
    wait_settled_running(server, operator).await;
    Ok(Latency {
        count: args.latency_tokens,
        rate: args.rate,
        missing: args.latency_tokens - ms.len(),
        ms,
        provider_ms,
    })
}

/// The simulator's own time for one App request (JWT check and answer), median of 20, measured
/// from this process over loopback: what "beyond the provider's latency" subtracts.
async fn sim_mint_ms(sim: &GithubSim, key: &RsaKey) -> f64 {
    let Ok(jwt) = testkit::github::app_jwt(
        &key.private_pkcs1_pem(),
        APP_ID,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    ) else {
        return 0.0;
    };
    let http = reqwest::Client::new();
    let url = format!("{}/app/installations", sim.url());
    let mut ms = Vec::new();
    for _ in 0..20 {
        let at = Instant::now();
        let ok = http.get(&url).bearer_auth(&jwt).send().await.is_ok();
        if ok {
            ms.push(at.elapsed().as_secs_f64() * 1e3);
        }
    }
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied().unwrap_or(0.0)
}

/// What a relabel and an annotation woke.
struct Wakes {
    /// Tokens in the relabelled namespace, and reconciles after the relabel.
    moved_tokens: u64,
    relabel_reconciles: u64,
    /// Reconciles after an annotation on the root namespace.
    annotation_reconciles: u64,
}

/// Relabels namespace `team-{M-1}` (a leaf) to another parent, then annotates the root; counts
/// the token reconciles each caused once the operator settled.
async fn wakes(
    client: &Client,
    server: &Server,
    operator: &Operator,
    args: &Args,
) -> Result<Wakes, BoxError> {
    use kube::api::{Patch, PatchParams};
    let leaf = args.namespaces - 1;
    let moved_tokens = (0..args.tokens)
        .filter(|i| i % args.namespaces == leaf)
        .count() as u64;
    let nss: Api<Namespace> = Api::all(client.clone());
    let before = operator.reconciled().await.unwrap_or(0);
    let relabel = json!({"metadata": {"labels": {PARENT_LABEL: ROOT}}});
    nss.patch(
        &format!("team-{leaf}"),
        &PatchParams::default(),
        &Patch::Merge(&relabel),
    )
    .await?;
    wait_settled_quietly(server, operator).await;
    let after_relabel = operator.reconciled().await.unwrap_or(0);
    let note = json!({"metadata": {"annotations": {"example.com/owner": "platform"}}});
    nss.patch(ROOT, &PatchParams::default(), &Patch::Merge(&note))
        .await?;
    wait_settled_quietly(server, operator).await;
    let after_note = operator.reconciled().await.unwrap_or(0);
    Ok(Wakes {
        moved_tokens,
        relabel_reconciles: after_relabel - before,
        annotation_reconciles: after_note - after_relabel,
    })
}

/// Like [`wait_settled`], but also a few seconds when the change caused no write at all.
async fn wait_settled_quietly(server: &Server, operator: &Operator) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_settled_running(server, operator).await;
}

struct Report<'a> {
    args: &'a Args,
    server: &'static str,
    /// The chart's policy set each token's finalizer in its create (the real server only).
    finalizer_at_admission: bool,
    machine: &'a Machine,
    ready_after: Duration,
    /// CPU time of each process from the operator's start to all Ready.
    cpu_to_ready: &'a Cpu,
    at_ready: &'a Snapshot,
    settle1: &'a Settle,
    at_settle: &'a Snapshot,
    rss1: &'a Rss,
    taken_over: Option<Duration>,
    /// CPU time of each process from the restart until every token was looked at.
    cpu_to_taken_over: &'a Cpu,
    settle2: &'a Settle,
    after_restart: &'a Snapshot,
    steady2: Option<u64>,
    peak2: u64,
    rss2: &'a Rss,
    still_ready: usize,
    unrelated: &'a Unrelated,
    latency: &'a Latency,
    wakes: &'a Wakes,
}

/// One row of the targets table.
struct Row {
    figure: String,
    measured: String,
    target: String,
    pass: Option<bool>,
}

fn row(figure: &str, measured: String, target: &str, pass: Option<bool>) -> Row {
    Row {
        figure: figure.into(),
        measured,
        target: target.into(),
        pass,
    }
}

fn mib_f(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

impl Report<'_> {
    /// Every figure of the issue next to its target.
    fn targets(&self) -> Vec<Row> {
        let n = self.args.tokens as u64;
        let within = |d: Option<Duration>, t: Duration| d.map(|d| d <= t);
        let secs =
            |d: Option<Duration>| d.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()));
        let mib = |m: Option<f64>| m.map_or("not measured".into(), |m| format!("{m:.1} MiB"));
        let under = |m: Option<f64>, t: f64| m.map(|m| m <= t);
        let (w_settle, by_kind) = writes(&self.at_settle.counters);
        // Writes that come with each mint (the token's Secret, the token and its status), and
        // the rest, which must not grow with the mints (the Connection's status and its
        // Events, once for all tokens).
        let of = |prefix: &str| -> u64 {
            (by_kind.iter())
                .filter(|(kind, _)| {
                    kind.split(' ')
                        .nth(1)
                        .is_some_and(|r| r.starts_with(prefix))
                })
                .map(|(_, n)| n)
                .sum()
        };
        let (secret_writes, token_writes) = (of("secrets"), of("vcsauthtokens."));
        let other_writes = w_settle - secret_writes - token_writes;
        let (w_restart, _) = writes(&self.after_restart.counters);
        let mints = self.at_settle.mints;
        let per_mint = |n: u64| n as f64 / mints.max(1) as f64;
        let writes_per_mint = per_mint(secret_writes + token_writes);
        let watched_gets: u64 = [
            "vcsauthtokens.patchbay.dev",
            "connections.patchbay.dev",
            "namespaces",
        ]
        .iter()
        .map(|r| self.at_settle.counters.get("get", r))
        .sum();
        // The output Secret's data (the live credential) and the connection's key: the Secret
        // watch holds metadata only.
        let secret_gets = self.at_settle.counters.get("get", "secrets");
        let restart_secret_gets = self.after_restart.counters.get("get", "secrets");
        let route = |r: &str| {
            self.at_settle
                .provider_by_route
                .get(r)
                .copied()
                .unwrap_or(0)
        };
        let lookups = route(testkit::github::route::ORG_INSTALLATION)
            + route(testkit::github::route::USER_INSTALLATION)
            + route(testkit::github::route::REPO_INSTALLATION);
        let run_minutes = self
            .settle1
            .settled_after
            .unwrap_or(self.ready_after)
            .as_secs_f64()
            / 60.0;
        let jwt_allowance = (run_minutes / 9.0).ceil().max(1.0) as u64;
        let steady1 = mib_f(self.rss1.last_kib);
        let added = match (
            mib_f(self.unrelated.after_kib),
            mib_f(self.unrelated.before_kib),
        ) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        let p50 = self
            .latency
            .quantile(0.5)
            .map(|l| l - self.latency.provider_ms);
        let p99 = self
            .latency
            .quantile(0.99)
            .map(|l| l - self.latency.provider_ms);
        let ms = |m: Option<f64>| m.map_or("none".into(), |m| format!("{m:.1} ms"));
        vec![
            row(
                "all Ready after operator start",
                format!("{:.2} s", self.ready_after.as_secs_f64()),
                "≤ 60 s",
                within(Some(self.ready_after), READY_TARGET),
            ),
            row(
                "RSS steady (VmRSS once settled)",
                mib(steady1),
                "≤ 64 MiB",
                under(steady1, RSS_STEADY_TARGET_MIB),
            ),
            row(
                "RSS peak (VmHWM)",
                mib(mib_f(self.rss1.hwm_kib)),
                "≤ 96 MiB",
                under(mib_f(self.rss1.hwm_kib), RSS_PEAK_TARGET_MIB),
            ),
            row(
                "restart: provider calls",
                self.after_restart.provider_calls.to_string(),
                "0",
                Some(self.after_restart.provider_calls == 0),
            ),
            row(
                "restart: Kubernetes writes",
                w_restart.to_string(),
                "0",
                Some(w_restart == 0),
            ),
            row(
                "restart: Secrets read (GET)",
                restart_secret_gets.to_string(),
                "≤ 2",
                Some(restart_secret_gets <= RESTART_SECRET_GETS),
            ),
            row(
                "restart: every token looked at (reconciled once)",
                secs(self.taken_over),
                "≤ 10 s",
                within(self.taken_over, RESTART_TARGET),
            ),
            row(
                "restart: tokens still Ready",
                format!("{}/{n}", self.still_ready),
                "all",
                Some(self.still_ready as u64 == n),
            ),
            row(
                "restart: RSS steady",
                mib(mib_f(self.steady2)),
                "≤ 64 MiB",
                under(mib_f(self.steady2), RSS_STEADY_TARGET_MIB),
            ),
            row(
                "restart: RSS peak",
                mib(Some(self.peak2 as f64 / 1024.0)),
                "≤ 96 MiB",
                Some(self.peak2 as f64 / 1024.0 <= RSS_PEAK_TARGET_MIB),
            ),
            row(
                &format!(
                    "{} unrelated 32 KiB Secrets: RSS added",
                    self.unrelated.count
                ),
                mib(added),
                "≤ 5 MiB",
                under(added, UNRELATED_TARGET_MIB),
            ),
            row(
                "unrelated Secrets: operator requests",
                self.unrelated.operator_requests.to_string(),
                "0",
                Some(self.unrelated.operator_requests == 0),
            ),
            row(
                "Kubernetes writes per mint (until settled)",
                format!(
                    "{writes_per_mint:.2}: Secret {:.2}, token {:.2} ({}); {other_writes} other \
                     writes in all",
                    per_mint(secret_writes),
                    per_mint(token_writes),
                    match self.finalizer_at_admission {
                        true => "the finalizer set at admission",
                        false => "the finalizer written by the operator: no admission policy here",
                    }
                ),
                "≤ 2",
                Some(writes_per_mint <= WRITES_PER_MINT_TARGET && other_writes <= FIXED_WRITES),
            ),
            row(
                "GETs of watched objects per mint",
                format!(
                    "{:.2} ({watched_gets} in all)",
                    watched_gets as f64 / mints.max(1) as f64
                ),
                "0",
                Some(watched_gets == 0),
            ),
            row(
                "GET secrets per mint (data no watch holds)",
                format!("{:.2}", secret_gets as f64 / mints.max(1) as f64),
                "≤ 1",
                Some(secret_gets <= mints),
            ),
            row(
                "provider calls per token (until settled)",
                format!(
                    "{:.3} ({} mints, {} calls)",
                    self.at_settle.provider_calls as f64 / n as f64,
                    mints,
                    self.at_settle.provider_calls
                ),
                "1 mint each",
                Some(mints == n),
            ),
            row(
                "installation lookups",
                lookups.to_string(),
                "≤ 1 per owner per hour",
                Some(lookups <= 1),
            ),
            row(
                "App JWTs signed",
                self.at_settle.jwts.to_string(),
                &format!("≤ 1 per 9 min ({jwt_allowance})"),
                Some(self.at_settle.jwts <= jwt_allowance),
            ),
            row(
                &format!(
                    "apply → Secret p50, {} tokens at {}/s, beyond the provider's {:.1} ms",
                    self.latency.count, self.latency.rate, self.latency.provider_ms
                ),
                ms(p50),
                "≤ 20 ms",
                p50.map(|m| m <= P50_TARGET_MS),
            ),
            row(
                "apply → Secret p99",
                ms(p99),
                "≤ 100 ms",
                p99.map(|m| m <= P99_TARGET_MS),
            ),
            row(
                "apply → Secret: Secrets never seen",
                self.latency.missing.to_string(),
                "0",
                Some(self.latency.missing == 0),
            ),
            row(
                &format!(
                    "relabel of a namespace with {} tokens: reconciles",
                    self.wakes.moved_tokens
                ),
                self.wakes.relabel_reconciles.to_string(),
                &format!("≈ {}", self.wakes.moved_tokens),
                Some(self.wakes.relabel_reconciles <= self.wakes.moved_tokens * 2),
            ),
            row(
                "annotation on the root namespace: reconciles",
                self.wakes.annotation_reconciles.to_string(),
                "0",
                Some(self.wakes.annotation_reconciles == 0),
            ),
        ]
    }

    fn print_targets(&self) {
        println!("| figure | measured | target | pass |");
        println!("|---|---|---|---|");
        for r in self.targets() {
            let verdict = match r.pass {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "not measured",
            };
            println!(
                "| {} | {} | {} | {verdict} |",
                r.figure, r.measured, r.target
            );
        }
        println!();
    }

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
            "operator: {} (separate process, RUST_LOG=warn); API server: {}",
            env!("CARGO_BIN_EXE_patchbay"),
            self.server
        );
        println!();
        self.print_targets();
        println!("| figure | value |");
        println!("|---|---|");
        println!(
            "| VcsAuthTokens / namespaces | {} / {} |",
            self.args.tokens, self.args.namespaces
        );
        println!("| time from operator start until all Ready | {secs:.2} s |");
        println!("| tokens Ready per second | {:.0} |", n as f64 / secs);
        println!(
            "| CPU until all Ready: {:.1} s of the {:.1} s the machine had | {} |",
            self.cpu_to_ready.total(),
            secs * self.machine.cpus as f64,
            self.cpu_to_ready.describe()
        );
        println!(
            "| CPU from the restart until every token was looked at | {} |",
            self.cpu_to_taken_over.describe()
        );
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
        print_rows(
            "the operator's requests while unrelated Secrets were created (the real server: \
             from its audit log, a watch counted only when it streams a list)",
            &self.unrelated.requests_by_kind,
        );
    }
}
