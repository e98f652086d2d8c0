//! Watches: events from a resourceVersion, selectors, bookmarks, timeouts, 410 Gone, and
//! kube's `watcher` with both initial-list strategies.
//!
//! All scenarios run on both servers except two that use the emulator's options (a bookmark
//! interval of 100 ms, a history window of 3 changes); the real server sends a bookmark at
//! about a watch's timeout and otherwise about once a minute.

use crate::Target;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;
use std::time::Duration;
use testkit::apiserver::{Emulator, EmulatorOptions};

fn cm(name: &str, app: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}})).unwrap()
}

fn kind_and_name(e: &WatchEvent<ConfigMap>) -> (String, String) {
    match e {
        WatchEvent::Added(o) => ("ADDED".into(), o.name_any()),
        WatchEvent::Modified(o) => ("MODIFIED".into(), o.name_any()),
        WatchEvent::Deleted(o) => ("DELETED".into(), o.name_any()),
        WatchEvent::Bookmark(b) => ("BOOKMARK".into(), b.metadata.resource_version.clone()),
        WatchEvent::Error(e) => ("ERROR".into(), e.code.to_string()),
    }
}

async fn a_watch_from_a_resource_version_sees_later_changes_in_order(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let first = api
        .create(&PostParams::default(), &cm("before", "x"))
        .await
        .unwrap();
    let from = first.resource_version().unwrap();
    api.create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let stream = api
        .watch(&WatchParams::default().timeout(2), &from)
        .await
        .unwrap();
    let events: Vec<_> = stream
        .take(3)
        .map(|e| kind_and_name(&e.unwrap()))
        .collect()
        .await;
    assert_eq!(
        events,
        vec![
            ("ADDED".into(), "a".into()),
            ("MODIFIED".into(), "a".into()),
            ("DELETED".into(), "a".into())
        ]
    );
}
on_both!(a_watch_from_a_resource_version_sees_later_changes_in_order);

async fn a_watch_with_a_label_selector_sees_objects_entering_and_leaving_it(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let rv = current_resource_version(&api).await;
    let stream = api
        .watch(&WatchParams::default().labels("app=web").timeout(2), &rv)
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("other", "db"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("w", "web"))
        .await
        .unwrap();
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "other",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    let events: Vec<_> = stream
        .take(3)
        .map(|e| kind_and_name(&e.unwrap()))
        .collect()
        .await;
    assert_eq!(
        events,
        vec![
            ("ADDED".into(), "w".into()),
            ("DELETED".into(), "w".into()),
            ("ADDED".into(), "other".into())
        ]
    );
}
on_both!(a_watch_with_a_label_selector_sees_objects_entering_and_leaving_it);

/// The resourceVersion of the current state (a list's).
async fn current_resource_version<K>(api: &Api<K>) -> String
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list_metadata(&kube::api::ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
}

async fn a_watch_ends_at_its_timeout_with_a_bookmark_when_allowed(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let rv = current_resource_version(&api).await;
    let watching = api
        .watch(&WatchParams::default().timeout(6), &rv)
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    // The real server sends a bookmark only when the resource's resourceVersion has moved
    // past the watch's: change a ConfigMap the watch does not see.
    let elsewhere = t.namespace("elsewhere").await;
    let moved = Api::<ConfigMap>::namespaced(t.client.clone(), &elsewhere)
        .create(&PostParams::default(), &cm("moved", "x"))
        .await
        .unwrap()
        .resource_version()
        .unwrap();
    let events: Vec<_> = watching.collect().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(5500) && took < Duration::from_secs(9),
        "{took:?}"
    );
    let bookmarked: Vec<u64> = events
        .iter()
        .map(|e| match e {
            Ok(WatchEvent::Bookmark(b)) => b.metadata.resource_version.parse().unwrap(),
            other => panic!("expected only bookmarks, got {other:?}"),
        })
        .collect();
    let moved: u64 = moved.parse().unwrap();
    assert!(
        bookmarked.last().is_some_and(|b| *b >= moved),
        "{bookmarked:?}, the change elsewhere at {moved}"
    );
}
on_both!(a_watch_ends_at_its_timeout_with_a_bookmark_when_allowed);

/// Emulator only: the bookmark interval is an emulator option.
#[tokio::test]
async fn bookmarks_arrive_at_the_emulators_interval() {
    let opts = EmulatorOptions {
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let emu = Emulator::start(opts).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let rv = emu.resource_version().to_string();
    let started = tokio::time::Instant::now();
    let events: Vec<_> = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900)
            && started.elapsed() < Duration::from_secs(3)
    );
    assert!(events.len() >= 3, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| matches!(e, Ok(WatchEvent::Bookmark(b)) if b.metadata.resource_version == rv))
    );
}

async fn a_watch_from_a_compacted_resource_version_gets_410_gone_as_an_error_event(t: Target) {
    // Events, because the real server's watch cache does not hold them: their watches go to
    // etcd, which has forgotten what the compaction removed.
    let events: Api<k8s_openapi::api::core::v1::Event> = t.api();
    let old = current_resource_version(&events).await;
    let cms: Api<ConfigMap> = t.api();
    // Two changes: etcd keeps the revision it was compacted at, and a watch from `old`
    // starts right after it.
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &cm(name, "x"))
            .await
            .unwrap();
    }
    t.compact_history().await;
    let got: Vec<_> = events
        .watch(&WatchParams::default().timeout(2), &old)
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(got.len(), 1, "{got:?}");
    match &got[0] {
        Ok(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}
on_both!(a_watch_from_a_compacted_resource_version_gets_410_gone_as_an_error_event);

/// Emulator only: the history window is an emulator option.
#[tokio::test]
async fn a_small_history_window_expires_old_resource_versions() {
    let emu = Emulator::start(EmulatorOptions {
        history_window: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let old = api
        .create(&PostParams::default(), &cm("a", "x"))
        .await
        .unwrap()
        .resource_version()
        .unwrap();
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("n{i}"), "x"))
            .await
            .unwrap();
    }
    let events: Vec<_> = api
        .watch(&WatchParams::default().timeout(1), &old)
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        matches!(events.as_slice(), [Ok(WatchEvent::Error(e))] if e.code == 410),
        "{events:?}"
    );
}

async fn watcher_sees(t: &Target, config: watcher::Config) {
    let api: Api<ConfigMap> = t.api();
    api.create(&PostParams::default(), &cm("existing", "x"))
        .await
        .unwrap();
    let mut stream = watcher(api.clone(), config).boxed();
    let mut seen = Vec::new();
    let writer = api.clone();
    let write = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer
            .create(&PostParams::default(), &cm("later", "x"))
            .await
            .unwrap();
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains(&"later".to_string()) {
        let ev = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .expect("watcher timed out")
            .unwrap()
            .unwrap();
        match ev {
            watcher::Event::InitApply(o) | watcher::Event::Apply(o) => seen.push(o.name_any()),
            watcher::Event::InitDone => seen.push("<init-done>".into()),
            _ => {}
        }
    }
    write.await.unwrap();
    assert_eq!(seen, vec!["existing", "<init-done>", "later"]);
}

async fn kubes_watcher_lists_then_watches(t: Target) {
    watcher_sees(&t, watcher::Config::default()).await;
}
on_both!(kubes_watcher_lists_then_watches);

async fn kubes_watcher_can_use_streaming_lists(t: Target) {
    watcher_sees(&t, watcher::Config::default().streaming_lists()).await;
}
on_both!(kubes_watcher_can_use_streaming_lists);

async fn metadata_only_gets_lists_and_watches_return_partial_object_metadata(t: Target) {
    use k8s_openapi::api::core::v1::Secret;
    use kube::core::PartialObjectMeta;
    let api: Api<Secret> = t.api();
    let s: Secret = serde_json::from_value(
        json!({"metadata": {"name": "s", "labels": {"a": "b"}}, "stringData": {"k": "v"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &s).await.unwrap();
    let one = api.get_metadata("s").await.unwrap();
    assert_eq!(
        one.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    assert_eq!(one.labels()["a"], "b");
    let list = api
        .list_metadata(&kube::api::ListParams::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let meta_api: Api<PartialObjectMeta<Secret>> = t.api();
    let mut stream = watcher(meta_api, watcher::Config::default()).boxed();
    let mut names = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match ev {
            watcher::Event::InitApply(m) => names.push(m.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, vec!["s"]);
}
on_both!(metadata_only_gets_lists_and_watches_return_partial_object_metadata);
