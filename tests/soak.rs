//! The soak: `patchbay run` as its own process under one fault at a time, each run bounded in
//! time and requests, each ending with the operator converged and with every check below.
//!
//! - SIGKILL at a fixed interval while it mints a fleet of tokens: it converges, leaves at most
//!   one unrevoked extra GitHub token per kill, and never writes a partial Secret.
//! - A fifth of all writes answered 409 and every watch cut at an interval: it converges with
//!   exactly one mint per token.
//! - GitHub failing 30 % of requests with 502 and 5 % with 429 and `retry-after`, for several
//!   renewal periods of 70-second tokens: no Secret ever holds a dead token, and every token
//!   GitHub issued reached a Secret (no duplicate mint).
//! - Hundreds of invalid and hostile manifests generated from the examples, for every field of
//!   every kind: each is refused naming its field, or gets a condition naming a field; no panic;
//!   memory within bounds.
//! - After each: no byte of a Secret value (GitHub tokens, the App's private key) in the
//!   operator's logs, in Events or in any status.
//!
//! Short by default (what CI runs: a few minutes in all). `PATCHBAY_SOAK=full` runs the sizes of
//! the issue (10,000 tokens, kills every 5 s, 10 minutes of GitHub faults); run it with
//! `cargo test --release --test soak` so the operator is the release build.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use patchbay::api::{Connection, VcsAuthToken};
use serde_json::{Value, json};
use support::fleet::{self, Operator, ROOT};
use testkit::apiserver::{Emulator, EmulatorOptions, Faults};
use testkit::github::{FaultRates, GithubSim, SimConfig};
use testkit::keys::RsaKey;

/// How big a soak is: the short form by default, the sizes with `PATCHBAY_SOAK=full`.
struct Size {
    tokens: usize,
    namespaces: usize,
    kill_every: Duration,
    conflict_tokens: usize,
    cut_every: Duration,
    fault_tokens: usize,
    github_faults_for: Duration,
    converge_within: Duration,
}

fn size() -> Size {
    if std::env::var("PATCHBAY_SOAK").as_deref() == Ok("full") {
        Size {
            tokens: 10_000,
            namespaces: 1_000,
            kill_every: Duration::from_secs(5),
            conflict_tokens: 10_000,
            cut_every: Duration::from_secs(10),
            fault_tokens: 200,
            github_faults_for: Duration::from_secs(600),
            converge_within: Duration::from_secs(900),
        }
    } else {
        Size {
            tokens: 600,
            namespaces: 60,
            kill_every: Duration::from_secs(2),
            conflict_tokens: 300,
            cut_every: Duration::from_secs(3),
            fault_tokens: 20,
            github_faults_for: Duration::from_secs(110),
            converge_within: Duration::from_secs(240),
        }
    }
}

/// The operator's reconcile slots for tokens (`TOKEN_CONCURRENCY`): how many mints a kill can
/// interrupt at most.
const TOKEN_CONCURRENCY: usize = 32;

/// One soak at a time: each runs an operator process, and two would share the two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The operator's RSS bound of the issue (release build); a debug build is checked against it
/// too, with its larger code pages it has less room.
const RSS_PEAK_BOUND_KIB: u64 = 96 * 1024;

/// The simulated GitHub: tokens of `lifetime`, no rate limit in the way of a fleet.
fn github_config(lifetime: Duration) -> SimConfig {
    SimConfig {
        token_lifetime: lifetime,
        rate_limit: 1_000_000,
        ..SimConfig::default()
    }
}

/// An emulator, a GitHub simulator with the App installed, and a seeded fleet.
struct Soak {
    emu: Emulator,
    client: Client,
    sim: GithubSim,
    key: RsaKey,
    dir: PathBuf,
    kubeconfig: PathBuf,
    logs: Vec<PathBuf>,
    secrets: SecretLog,
}

impl Soak {
    async fn start(name: &str, config: SimConfig, tokens: usize, namespaces: usize) -> Self {
        let options = EmulatorOptions {
            history_window: 500_000,
            ..Default::default()
        };
        let (emu, dir, kubeconfig) = fleet::emulated(&format!("soak-{name}"), options)
            .await
            .expect("the emulator starts with the CRDs");
        let client = emu.client();
        let (sim, key) = fleet::github(config).await.expect("the simulator starts");
        fleet::seed(&client, &sim, &key, tokens, namespaces)
            .await
            .expect("the fleet is seeded");
        let secrets = SecretLog::watch(client.clone());
        Soak {
            emu,
            client,
            sim,
            key,
            dir,
            kubeconfig,
            logs: Vec::new(),
            secrets,
        }
    }

    fn operator(&mut self) -> Operator {
        let log = self
            .dir
            .join(format!("operator-{}.log", self.logs.len() + 1));
        self.logs.push(log.clone());
        Operator::start(&self.kubeconfig, &log, "info", |_| {}).expect("the operator starts")
    }

    /// Waits until `n` tokens are Ready; false after `within`.
    async fn all_ready(&self, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if fleet::count_ready(&self.client).await.is_ok_and(|r| r >= n) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    }

    /// GitHub tokens that still work but no Secret holds: minted and lost.
    async fn orphans(&self) -> Vec<String> {
        let held = held_tokens(&self.client).await;
        let live = self.sim.live_tokens();
        let orphans = live.iter().filter(|t| !held.contains(&t.token));
        orphans.map(|t| t.token.clone()).collect()
    }

    /// Every Secret patchbay wrote was whole at every version, its token one GitHub issued.
    fn assert_no_partial_secret(&self) {
        let issued: BTreeSet<String> = self.sim.tokens().into_iter().map(|t| t.token).collect();
        let log = self.secrets.0.lock().unwrap();
        assert!(log.versions > 0, "the soak saw no Secret written");
        let partial: Vec<_> = (log.seen.iter())
            .filter(|(_, token)| !token.as_ref().is_some_and(|t| issued.contains(t)))
            .map(|(key, _)| key.clone())
            .collect();
        assert!(
            partial.is_empty(),
            "{} Secret versions were not whole (no token, or one GitHub never issued): {:?}",
            partial.len(),
            &partial[..partial.len().min(5)]
        );
    }

    /// No Secret value in the operator's logs, in Events or in any Connection or token.
    async fn assert_no_secret_value_leaked(&self) {
        let mut values: Vec<String> = self.sim.tokens().into_iter().map(|t| t.token).collect();
        assert!(!values.is_empty(), "GitHub issued no token in this soak");
        // The key's base64 lines: any one of them is a leak of the key.
        let pem = self.key.private_pkcs1_pem();
        values.extend(
            (pem.lines())
                .filter(|l| !l.starts_with("-----") && l.len() >= 32)
                .map(str::to_owned),
        );
        let mut places: Vec<(String, String)> = Vec::new();
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            places.push((log.display().to_string(), text));
        }
        let events: Api<Event> = Api::all(self.client.clone());
        let events = events
            .list(&ListParams::default())
            .await
            .expect("Events list");
        places.push((
            "Events".into(),
            serde_json::to_string(&events.items).unwrap(),
        ));
        let tokens: Api<VcsAuthToken> = Api::all(self.client.clone());
        let tokens = tokens
            .list(&ListParams::default())
            .await
            .expect("tokens list");
        places.push((
            "VcsAuthTokens".into(),
            serde_json::to_string(&tokens.items).unwrap(),
        ));
        let connections: Api<Connection> = Api::all(self.client.clone());
        let connections = (connections.list(&ListParams::default()).await).expect("list");
        places.push((
            "Connections".into(),
            serde_json::to_string(&connections.items).unwrap(),
        ));
        let mut leaks = Vec::new();
        for (place, text) in &places {
            // Tokens are found by their shape, then looked up: one pass over each text.
            let found = text
                .match_indices("ghs_")
                .map(|(i, _)| &text[i..(i + 40).min(text.len())]);
            let issued: BTreeSet<&str> = values.iter().map(String::as_str).collect();
            leaks.extend(found.filter(|t| issued.contains(t)).map(|_| place.clone()));
            for line in values.iter().filter(|v| !v.starts_with("ghs_")) {
                if text.contains(line.as_str()) {
                    leaks.push(format!("{place} (the App's private key)"));
                }
            }
        }
        assert!(leaks.is_empty(), "Secret values leaked into: {leaks:?}");
        assert!(
            places
                .iter()
                .any(|(p, t)| p == "VcsAuthTokens" && t.contains("\"Ready\"")),
            "the scan looked at statuses that exist"
        );
    }

    /// No operator log holds a panic.
    fn assert_no_panic(&self) {
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            assert!(
                !text.contains("panicked"),
                "the operator panicked ({}):\n{}",
                log.display(),
                text.lines()
                    .filter(|l| l.contains("panicked"))
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }

    /// The checks every soak ends with, then the servers stop.
    async fn finish(self) {
        self.assert_no_partial_secret();
        self.assert_no_panic();
        self.assert_no_secret_value_leaked().await;
        self.stop().await;
    }

    async fn stop(self) {
        self.sim.shutdown().await;
        self.emu.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every version of every Secret patchbay wrote, as the watch delivered them: `ns/name@rv` and
/// the GitHub token it held (None when it held none).
#[derive(Default)]
struct SecretLogInner {
    seen: BTreeMap<String, Option<String>>,
    versions: u64,
    /// Every token value a Secret ever held.
    tokens: BTreeSet<String>,
}

struct SecretLog(Arc<Mutex<SecretLogInner>>);

impl SecretLog {
    fn watch(client: Client) -> Self {
        let inner = Arc::new(Mutex::new(SecretLogInner::default()));
        let log = inner.clone();
        tokio::spawn(async move {
            let api: Api<Secret> = Api::all(client);
            let config = watcher::Config::default().labels("app.kubernetes.io/managed-by=patchbay");
            let mut events = watcher(api, config)
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(Ok(secret)) = events.next().await {
                let key = format!(
                    "{}/{}@{}",
                    secret.namespace().unwrap_or_default(),
                    secret.name_any(),
                    secret.resource_version().unwrap_or_default()
                );
                let token = token_of(&secret);
                let mut log = log.lock().unwrap();
                log.versions += 1;
                if let Some(token) = &token {
                    log.tokens.insert(token.clone());
                }
                log.seen.insert(key, token);
            }
        });
        SecretLog(inner)
    }
}

/// The GitHub token a Secret holds under `token`, when it holds a non-empty one.
fn token_of(secret: &Secret) -> Option<String> {
    let data = secret.data.as_ref()?;
    let token = String::from_utf8(data.get("token")?.0.clone()).ok()?;
    (!token.is_empty()).then_some(token)
}

/// The tokens every patchbay Secret holds now.
async fn held_tokens(client: &Client) -> BTreeSet<String> {
    let api: Api<Secret> = Api::all(client.clone());
    let params = ListParams::default().labels("app.kubernetes.io/managed-by=patchbay");
    let secrets = api.list(&params).await.expect("Secrets list");
    secrets.items.iter().filter_map(token_of).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_every_few_seconds_converges_without_partial_secrets_or_lost_mints() {
    let _one = ONE_AT_A_TIME.lock().await;
    let size = size();
    let n = size.tokens;
    let config = github_config(Duration::from_secs(3_600));
    let mut soak = Soak::start("kill", config, n, size.namespaces).await;
    let started = Instant::now();
    let mut kills = 0;
    let mut ready_at_kill = Vec::new();
    let mut operator = soak.operator();
    loop {
        tokio::time::sleep(size.kill_every).await;
        let ready = fleet::count_ready(&soak.client).await.unwrap_or(0);
        if ready >= n || started.elapsed() > size.converge_within {
            break;
        }
        operator.kill();
        kills += 1;
        ready_at_kill.push(ready);
        operator = soak.operator();
    }
    let converged = soak.all_ready(n, size.converge_within).await;
    fleet::settle(&soak.emu, Duration::from_secs(3)).await;
    let rss = operator.stop();
    let orphans = soak.orphans().await;
    eprintln!(
        "kill soak: {n} tokens, {kills} SIGKILLs (Ready at each: {ready_at_kill:?}), all Ready after \
         {:.1} s; {} mints, {} orphaned live tokens; last operator peak RSS {} KiB",
        started.elapsed().as_secs_f64(),
        soak.sim.mint_count(),
        orphans.len(),
        rss.sampled_peak_kib
    );
    eprintln!(
        "kill soak: {:.2} orphaned tokens per kill (target at most 1)",
        orphans.len() as f64 / kills.max(1) as f64
    );
    assert!(converged, "not every token was Ready after the kills");
    assert!(kills >= 1, "the operator was never killed while it minted");
    // A kill can only lose the mints it interrupts between GitHub's answer and the Secret write:
    // at most one per reconcile slot. A restarted operator re-mints nothing a Secret holds.
    assert!(
        orphans.len() <= kills * TOKEN_CONCURRENCY,
        "{} live GitHub tokens no Secret holds after {kills} kills",
        orphans.len()
    );
    let remints: Vec<String> = (soak.logs.iter())
        .flat_map(|log| {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| {
            l.contains("minting a credential") && !l.contains("reason=\"SecretDoesNotExist\"")
        })
        .collect();
    assert!(
        remints.is_empty(),
        "a restart minted again what a Secret held: {remints:?}"
    );
    soak.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_writes_and_cut_watches_converge_with_one_mint_per_token() {
    let _one = ONE_AT_A_TIME.lock().await;
    let size = size();
    let n = size.conflict_tokens;
    let config = github_config(Duration::from_secs(3_600));
    let mut soak = Soak::start("conflicts", config, n, (n / 10).max(1)).await;
    soak.emu.set_faults(Faults {
        conflict_rate: 0.2,
        ..Faults::default()
    });
    let started = Instant::now();
    let operator = soak.operator();
    let mut cuts = 0;
    let converged = loop {
        if fleet::count_ready(&soak.client).await.is_ok_and(|r| r >= n) {
            break true;
        }
        if started.elapsed() > size.converge_within {
            break false;
        }
        tokio::time::sleep(size.cut_every).await;
        soak.emu.cut_watches();
        cuts += 1;
    };
    let ready_after = started.elapsed();
    fleet::settle(&soak.emu, Duration::from_secs(3)).await;
    soak.emu.clear_faults();
    let conflicts = soak.emu.counters();
    operator.stop();
    eprintln!(
        "conflict soak: {n} tokens Ready after {:.1} s under 20 % 409s and {cuts} watch cuts; \
         {} mints; {} requests served",
        ready_after.as_secs_f64(),
        soak.sim.mint_count(),
        conflicts.0.values().sum::<u64>()
    );
    assert!(converged, "not every token was Ready under conflicts");
    assert!(cuts >= 1, "no watch was cut while the operator worked");
    assert_eq!(
        soak.sim.mint_count(),
        n as u64,
        "every token minted exactly once"
    );
    soak.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_github_lets_no_token_lapse_and_mints_none_twice() {
    let _one = ONE_AT_A_TIME.lock().await;
    let size = size();
    let n = size.fault_tokens;
    let config = github_config(Duration::from_secs(70));
    let mut soak = Soak::start("github", config, n, (n / 10).max(1)).await;
    let operator = soak.operator();
    assert!(
        soak.all_ready(n, Duration::from_secs(60)).await,
        "the fleet was Ready before the faults began"
    );
    soak.sim.set_fault_rates(FaultRates {
        server_error: 0.30,
        rate_limited: 0.05,
        retry_after_secs: 2,
    });
    let started = Instant::now();
    let mut lapses = BTreeMap::<String, u32>::new();
    let mut samples = 0;
    while started.elapsed() < size.github_faults_for {
        let api: Api<Secret> = Api::all(soak.client.clone());
        let params = ListParams::default().labels("app.kubernetes.io/managed-by=patchbay");
        for secret in api.list(&params).await.expect("Secrets list").items {
            let live = token_of(&secret).is_some_and(|t| soak.sim.is_live(&t));
            if !live {
                let key = format!(
                    "{}/{}",
                    secret.namespace().unwrap_or_default(),
                    secret.name_any()
                );
                *lapses.entry(key).or_default() += 1;
            }
        }
        samples += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    soak.sim.clear_faults();
    let calls = soak.sim.total_calls();
    operator.stop();
    let mints = soak.sim.mint_count();
    let written = soak.secrets.0.lock().unwrap().tokens.len() as u64;
    let never_written: Vec<String> = (soak.sim.tokens().into_iter())
        .map(|t| t.token)
        .filter(|t| !soak.secrets.0.lock().unwrap().tokens.contains(t))
        .collect();
    eprintln!(
        "GitHub fault soak: {n} tokens of 70 s for {} s at 30 % 502 and 5 % 429; {samples} samples; \
         {mints} mints, {written} distinct tokens written, {calls} GitHub requests; lapses {lapses:?}",
        size.github_faults_for.as_secs()
    );
    assert!(
        mints >= 2 * n as u64,
        "every token renewed at least once under faults"
    );
    assert!(lapses.is_empty(), "Secrets held a dead token: {lapses:?}");
    assert!(
        never_written.is_empty(),
        "{} tokens GitHub issued never reached a Secret (duplicate mints)",
        never_written.len()
    );
    soak.finish().await;
}

/// A manifest to throw at the operator, and the field it breaks.
struct Hostile {
    manifest: Value,
    field: String,
}

/// The Connections and tokens of `examples/`, each mutated at every field of its spec: a value of
/// the wrong type, a 64 KiB string, control characters and path tricks, URLs that point at
/// link-local or non-HTTP targets.
fn hostile_manifests(namespace: &str) -> Vec<Hostile> {
    let mut bases = Vec::new();
    for dir in ["connections", "tokens"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&path).unwrap().flatten().collect();
        files.sort_by_key(|f| f.path());
        for file in files {
            let text = std::fs::read_to_string(file.path()).unwrap();
            for doc in
                serde_saphyr::from_str_multiple::<Value, Vec<Value>>(&text).unwrap_or_default()
            {
                let kind = doc["kind"].as_str().unwrap_or_default();
                if kind == "Connection" || kind == "VcsAuthToken" {
                    bases.push(doc);
                }
            }
        }
    }
    let huge = "x".repeat(64 * 1024);
    let strings = [
        huge.as_str(),
        "../../../etc/passwd",
        "a\u{0}b\r\nX-Injected: 1",
        "http://169.254.169.254/latest/meta-data/",
        "file:///var/run/secrets/kubernetes.io/serviceaccount/token",
    ];
    let mut out = Vec::new();
    for (b, base) in bases.iter().enumerate() {
        let mut leaves = Vec::new();
        leaf_paths(&base["spec"], "spec", &mut leaves);
        for (path, value) in leaves {
            let mut push = |new: Value, tag: &str| {
                let mut manifest = base.clone();
                manifest["metadata"] = json!({
                    "name": format!("hostile-{b}-{}-{tag}", out.len()),
                    "namespace": namespace,
                });
                set_path(&mut manifest, &path, new);
                out.push(Hostile {
                    manifest,
                    field: path.clone(),
                });
            };
            let wrong_type = match value {
                Value::String(_) => json!(12345),
                _ => json!({"unexpected": "object"}),
            };
            push(wrong_type, "type");
            if value.is_string() {
                for (i, s) in strings.iter().enumerate() {
                    push(json!(s), &format!("s{i}"));
                }
            }
        }
    }
    out
}

/// Every leaf (a string, number, boolean, or an array of them) under `value`, with its path.
fn leaf_paths(value: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                leaf_paths(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for (i, v) in items.iter().enumerate() {
                leaf_paths(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => out.push((path.to_string(), value.clone())),
    }
}

fn set_path(manifest: &mut Value, path: &str, new: Value) {
    let mut at = manifest;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        at = &mut at[name];
        if let Some(i) = index {
            at = &mut at[i];
        }
    }
    *at = new;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_hostile_manifests_each_get_an_error_naming_a_field_and_no_panic() {
    let _one = ONE_AT_A_TIME.lock().await;
    let config = github_config(Duration::from_secs(3_600));
    let mut soak = Soak::start("hostile", config, 10, 2).await;
    fleet::create_namespace(&soak.client, "hostile", Some(ROOT))
        .await
        .unwrap();
    let mut operator = soak.operator();
    assert!(
        soak.all_ready(10, Duration::from_secs(60)).await,
        "the fleet is Ready"
    );
    let hostile = hostile_manifests("hostile");
    let total = hostile.len();
    let mut refused = 0;
    let mut accepted: Vec<(String, String, String)> = Vec::new();
    let mut failures = Vec::new();
    for Hostile { manifest, field } in hostile {
        let kind = manifest["kind"].as_str().unwrap().to_string();
        let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
        match create(&soak.client, &manifest).await {
            Ok(()) => accepted.push((kind, name, field)),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                refused += 1;
                let named = (status.details.as_ref())
                    .is_some_and(|d| d.causes.iter().any(|c| c.field.starts_with("spec")));
                if !named {
                    failures.push(format!(
                        "{name} ({field}): refused naming no field: {}",
                        status.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{name} ({field}): {e}")),
        }
    }
    // Every accepted one gets a Ready condition naming a field of its spec, of bounded size.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut waiting = accepted.clone();
    while !waiting.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for (kind, name, field) in waiting {
            let ready = ready_of(&soak.client, &kind, &name).await;
            match ready {
                None => still.push((kind, name, field)),
                Some((status, message)) => {
                    if message.len() > 2_048 {
                        failures.push(format!(
                            "{name} ({field}): a {} byte message",
                            message.len()
                        ));
                    } else if status == "False" && !message.contains("spec") {
                        failures.push(format!("{name} ({field}): names no field: {message}"));
                    }
                }
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    failures.extend(
        (waiting.iter()).map(|(_, name, field)| format!("{name} ({field}): no Ready condition")),
    );
    let alive = operator.running();
    let peak = operator.peak_kib();
    operator.stop();
    eprintln!(
        "hostile soak: {total} manifests, {refused} refused by admission, {} accepted and given a \
         condition; operator peak RSS {} KiB",
        accepted.len(),
        peak
    );
    assert!(
        total >= 200,
        "only {total} hostile manifests were generated"
    );
    assert!(alive, "the operator died under hostile manifests");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(peak <= RSS_PEAK_BOUND_KIB, "peak RSS {peak} KiB");
    soak.finish().await;
}

/// Creates `manifest` (a Connection or a token, as raw JSON: a field of the wrong type reaches
/// the API server as it is, like `kubectl create` sends it).
async fn create(client: &Client, manifest: &Value) -> Result<(), kube::Error> {
    let resource = match manifest["kind"].as_str() {
        Some("Connection") => ApiResource::erase::<Connection>(&()),
        _ => ApiResource::erase::<VcsAuthToken>(&()),
    };
    let namespace = manifest["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let object: DynamicObject =
        serde_json::from_value(manifest.clone()).map_err(kube::Error::SerdeError)?;
    api.create(&PostParams::default(), &object)
        .await
        .map(|_| ())
}

/// The Ready condition's status and message of a Connection or token, once it has one.
async fn ready_of(client: &Client, kind: &str, name: &str) -> Option<(String, String)> {
    let status = if kind == "Connection" {
        let api: Api<Connection> = Api::namespaced(client.clone(), "hostile");
        serde_json::to_value(api.get(name).await.ok()?.status).ok()?
    } else {
        let api: Api<VcsAuthToken> = Api::namespaced(client.clone(), "hostile");
        serde_json::to_value(api.get(name).await.ok()?.status).ok()?
    };
    let conditions = status["conditions"].as_array()?;
    let ready = conditions.iter().find(|c| c["type"] == "Ready")?;
    Some((
        ready["status"].as_str()?.to_string(),
        ready["message"].as_str().unwrap_or_default().to_string(),
    ))
}
