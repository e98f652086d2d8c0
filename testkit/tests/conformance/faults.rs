//! Test controls: request counters, injected faults, cut watches, history compaction, and the
//! admin endpoint that exposes them over HTTP. Emulator only: these are the emulator's
//! controls.

use crate::emulator;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::apiserver::Faults;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn counters_count_requests_per_verb_and_resource() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    emu.reset_counters();
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.get("a").await.unwrap();
    api.get("a").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    let c = emu.counters();
    assert_eq!(
        (
            c.get("create", "configmaps"),
            c.get("get", "configmaps"),
            c.get("list", "configmaps")
        ),
        (1, 2, 1)
    );
    assert_eq!(c.total("delete"), 0);
}

#[tokio::test]
async fn injected_conflicts_and_errors_fail_writes_until_cleared() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    emu.set_faults(Faults {
        conflict_rate: 1.0,
        resource: Some("configmaps".into()),
        ..Default::default()
    });
    match api
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("expected an injected conflict, got {other:?}"),
    }
    emu.set_faults(Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    match api
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => assert_eq!(s.code, 500),
        other => panic!("expected an injected error, got {other:?}"),
    }
    assert!(
        api.list(&ListParams::default()).await.is_ok(),
        "reads are never failed"
    );
    emu.clear_faults();
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
}

#[tokio::test]
async fn injected_latency_delays_requests() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    emu.set_faults(Faults {
        latency_ms: 300,
        ..Default::default()
    });
    let started = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_watcher_survives_cut_watch_streams_and_sees_later_changes() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    // Drive the watcher in its own task so its watch request is open while we cut.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(
        watcher(api.clone(), watcher::Config::default()).try_for_each(move |ev| {
            if let watcher::Event::Apply(o) = ev {
                let _ = tx.send(o.name_any());
            }
            futures::future::ready(Ok(()))
        }),
    );
    let watching = || emu.counters().get("watch", "configmaps");
    crate::eventually(5, "the first watch request", || async {
        (watching() == 1).then_some(())
    })
    .await;
    emu.cut_watches();
    crate::eventually(5, "the watcher to re-watch", || async {
        (watching() >= 2).then_some(())
    })
    .await;
    api.create(&PostParams::default(), &cm("after-cut"))
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event after the cut");
    assert_eq!(seen.as_deref(), Some("after-cut"));
    driver.abort();
}

#[tokio::test]
async fn the_admin_endpoint_exposes_counters_and_faults_over_http() {
    let emu = emulator().await;
    let client = emu.client();
    let send = |method: &str, path: &str, body: &str| {
        hyper::Request::builder()
            .method(method)
            .uri(path)
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.get_opt("x").await.unwrap();
    let counters: serde_json::Value = serde_json::from_str(
        &client
            .request_text(send("GET", "/emulator/counters", ""))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        counters["counters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["verb"] == "get" && r["count"] == 1)
    );
    client
        .request_text(send("PUT", "/emulator/faults", r#"{"errorRate": 1.0}"#))
        .await
        .unwrap();
    assert!(api.create(&PostParams::default(), &cm("a")).await.is_err());
    client
        .request_text(send("DELETE", "/emulator/faults", ""))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    client
        .request_text(send("POST", "/emulator/compact", ""))
        .await
        .unwrap();
    client
        .request_text(send("POST", "/emulator/cut-watches", ""))
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_watches_make_a_watcher_relist_and_carry_on() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Errors (the 410) are items of the stream; like a Controller, keep polling past them.
    let driver = tokio::spawn(watcher(api.clone(), watcher::Config::default()).for_each(
        move |ev| {
            let label = match ev {
                Ok(watcher::Event::Init) => "init".to_string(),
                Ok(watcher::Event::Apply(o)) => o.name_any(),
                Err(e) => format!("error: {e}"),
                _ => String::new(),
            };
            let _ = tx.send(label);
            futures::future::ready(())
        },
    ));
    let watching = || emu.counters().get("watch", "configmaps");
    crate::eventually(5, "the first watch request", || async {
        (watching() == 1).then_some(())
    })
    .await;
    assert_eq!(rx.recv().await.as_deref(), Some("init"));
    emu.expire_watches();
    let relisted = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(l) = rx.recv().await {
            if l == "init" {
                return true;
            }
        }
        false
    })
    .await
    .expect("the watcher relisted after 410");
    assert!(relisted);
    crate::eventually(5, "a watch after the relist", || async {
        (watching() >= 3).then_some(())
    })
    .await;
    api.create(&PostParams::default(), &cm("after-expiry"))
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(l) = rx.recv().await {
            if l == "after-expiry" {
                return true;
            }
        }
        false
    })
    .await
    .expect("an event after the relist");
    assert!(seen);
    driver.abort();
}
