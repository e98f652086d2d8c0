//! Emulator benchmark: sustained creates/s and patches/s through the kube client, and watch
//! fan-out latency to many watchers.
//!
//! `cargo run --release -p testkit --example bench -- [OBJECTS] [WATCHERS] [CONCURRENCY] [RATE]`
//! (defaults 10000, 24, 32, 2000).
//!
//! Phases: creates as fast as the client goes; patches as fast as the client goes while every
//! watcher receives every change; then patches paced at RATE/s, where the fan-out latency
//! (patch sent to event decoded by each watcher) is measured. The client and its watchers run in
//! the same process as the emulator, so all numbers include kube's own encoding and decoding.

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testkit::apiserver::{Emulator, EmulatorOptions};
use tokio::sync::Mutex;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (objects, watchers, concurrency) = (arg(1, 10_000), arg(2, 24), arg(3, 32));
    let emu = Emulator::start(EmulatorOptions {
        history_window: 200_000,
        ..Default::default()
    })
    .await?;
    let client = emu.client();
    let namespaces = (objects / 10).clamp(1, 1000);
    let nss: Api<Namespace> = Api::all(client.clone());
    for i in 0..namespaces {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": format!("ns-{i}")}}))?;
        nss.create(&PostParams::default(), &ns).await?;
    }
    let started = Instant::now();
    stream::iter(0..objects)
        .map(|i| {
            let api: Api<ConfigMap> =
                Api::namespaced(client.clone(), &format!("ns-{}", i % namespaces));
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("cm-{i}"), "labels": {"bench": "true"}},
                    "data": {"payload": "x".repeat(256)}
                }))
                .expect("a literal ConfigMap");
                api.create(&PostParams::default(), &cm).await
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let create_secs = started.elapsed().as_secs_f64();

    let rate = arg(4, 2000);
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(objects * watchers)));
    let delivered = Arc::new(AtomicUsize::new(0));
    let base = Instant::now();
    let rv = emu.resource_version().to_string();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let api: Api<ConfigMap> = Api::all(client.clone());
        let lat = latencies.clone();
        let count = delivered.clone();
        let mut events = api
            .watch(&WatchParams::default().timeout(290), &rv)
            .await?
            .boxed();
        tasks.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < 2 * objects {
                match events.next().await {
                    Some(Ok(WatchEvent::Modified(cm))) => {
                        let a = cm.metadata.annotations.unwrap_or_default();
                        let sent = a.get("bench/sent-us").and_then(|s| s.parse::<u64>().ok());
                        if let (Some("paced"), Some(sent)) =
                            (a.get("bench/phase").map(String::as_str), sent)
                        {
                            let now = base.elapsed().as_micros() as u64;
                            lat.lock().await.push(now.saturating_sub(sent));
                        }
                        seen += 1;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        }));
    }
    let shape = Shape {
        objects,
        namespaces,
        concurrency,
        base,
    };
    let burst_secs = patch_all(&client, &shape, "burst", None).await?;
    // Let every watcher drain the burst, so the paced phase measures latency, not backlog.
    while delivered.load(Ordering::Relaxed) < objects * watchers {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let paced_secs = patch_all(&client, &shape, "paced", Some(rate)).await?;
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t).await??;
    }
    let mut lat = latencies.lock().await.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1));
        lat.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "objects: {objects} ConfigMaps (256 B payload) in {namespaces} namespaces; concurrency {concurrency}; {watchers} watchers"
    );
    println!(
        "creates: {:.0}/s ({create_secs:.2} s)",
        objects as f64 / create_secs
    );
    println!(
        "patches: {:.0}/s ({burst_secs:.2} s) while fanning out to {watchers} watches",
        objects as f64 / burst_secs
    );
    println!(
        "paced patches: {:.0}/s achieved of {rate}/s asked",
        objects as f64 / paced_secs
    );
    println!(
        "watch fan-out latency at that rate (patch sent -> event decoded by a watcher): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} deliveries",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        lat.len()
    );
    emu.shutdown().await;
    Ok(())
}

/// The benchmark's size.
struct Shape {
    objects: usize,
    namespaces: usize,
    concurrency: usize,
    base: Instant,
}

/// Patches every ConfigMap once, stamping the phase and send time; paced at `rate`/s if given.
/// Returns the seconds taken.
async fn patch_all(
    client: &kube::Client,
    s: &Shape,
    phase: &str,
    rate: Option<usize>,
) -> Result<f64, kube::Error> {
    let started = tokio::time::Instant::now();
    stream::iter(0..s.objects)
        .map(|i| {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &format!("ns-{}", i % s.namespaces));
            async move {
                if let Some(r) = rate {
                    tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / r as f64)).await;
                }
                let sent = s.base.elapsed().as_micros().to_string();
                let p = json!({"metadata": {"annotations": {"bench/sent-us": sent, "bench/phase": phase}}});
                api.patch(&format!("cm-{i}"), &PatchParams::default(), &Patch::Merge(&p)).await
            }
        })
        .buffer_unordered(s.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(started.elapsed().as_secs_f64())
}
