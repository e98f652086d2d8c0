//! Emulator benchmark: sustained creates/s and patches/s through the kube client, and watch
//! fan-out latency to many watchers.
//!
//! `cargo run --release -p testkit --example bench -- [OBJECTS] [WATCHERS] [CONCURRENCY]`
//! (defaults 10000, 24, 32).

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::sync::Arc;
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

    let latencies = Arc::new(Mutex::new(Vec::with_capacity(objects * watchers)));
    let base = Instant::now();
    let rv = emu.resource_version().to_string();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let api: Api<ConfigMap> = Api::all(client.clone());
        let lat = latencies.clone();
        let mut events = api
            .watch(&WatchParams::default().timeout(290), &rv)
            .await?
            .boxed();
        tasks.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < objects {
                match events.next().await {
                    Some(Ok(WatchEvent::Modified(cm))) => {
                        let sent = cm
                            .metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get("bench/sent-us"))
                            .and_then(|s| s.parse::<u64>().ok());
                        if let Some(sent) = sent {
                            let now = base.elapsed().as_micros() as u64;
                            lat.lock().await.push(now.saturating_sub(sent));
                        }
                        seen += 1;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        }));
    }
    let started = Instant::now();
    stream::iter(0..objects)
        .map(|i| {
            let api: Api<ConfigMap> =
                Api::namespaced(client.clone(), &format!("ns-{}", i % namespaces));
            async move {
                let sent = base.elapsed().as_micros().to_string();
                let p = json!({"metadata": {"annotations": {"bench/sent-us": sent}}});
                api.patch(
                    &format!("cm-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&p),
                )
                .await
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let patch_secs = started.elapsed().as_secs_f64();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t).await??;
    }
    let mut lat = latencies.lock().await.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "objects: {objects} ConfigMaps (256 B payload) in {namespaces} namespaces; concurrency {concurrency}; {watchers} watchers"
    );
    println!(
        "creates: {:.0}/s ({create_secs:.2} s)",
        objects as f64 / create_secs
    );
    println!(
        "patches: {:.0}/s ({patch_secs:.2} s) while fanning out to {watchers} watches",
        objects as f64 / patch_secs
    );
    println!(
        "watch fan-out latency (patch sent -> event received): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} deliveries",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        lat.len()
    );
    emu.shutdown().await;
    Ok(())
}
