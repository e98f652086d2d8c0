//! Deletion and what follows from it: finalizers, the generation, namespace termination and
//! ownerReference propagation.
//!
//! All scenarios run on both servers except two that need kube-controller-manager, which a
//! bare kube-apiserver does not have: `deleting_a_namespace_deletes_its_contents_at_once` (no
//! namespace controller: a deleted namespace stays `Terminating` with its contents) and
//! `foreground_deletion_waits_for_dependents_and_background_deletion_collects_them` (no garbage
//! collector: dependents stay).

use crate::{Target, Widget, WidgetSpec, dyn_widget, emulator, with_widgets};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn status_of(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn a_terminating_namespace_refuses_new_content_with_forbidden(t: Target) {
    let ns = t.namespace("going").await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), &ns);
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    let nss: Api<Namespace> = Api::all(t.client.clone());
    nss.delete(&ns, &DeleteParams::default()).await.unwrap();
    let terminating = nss.get(&ns).await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    let s = status_of(
        cms.create(&PostParams::default(), &cm("late"))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert!(
        s.message.ends_with(&format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        )),
        "{}",
        s.message
    );
}
on_both!(a_terminating_namespace_refuses_new_content_with_forbidden);

/// Emulator only: a bare kube-apiserver has no namespace controller to empty the namespace.
#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents_at_once() {
    let emu = emulator().await;
    let client = emu.client();
    let nss: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("team-a".into());
    let made = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(made.status.unwrap().phase.as_deref(), Some("Active"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    nss.delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    assert!(nss.get_opt("team-a").await.unwrap().is_none());
    assert!(cms.get_opt("x").await.unwrap().is_none());
}

async fn the_generation_moves_with_the_spec_and_the_deletion_mark_only(t: Target) {
    let t = t.with_widgets().await;
    let api = t.widgets();
    let mut w = dyn_widget("w", 1);
    w.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let made = api.create(&PostParams::default(), &w).await.unwrap();
    let generation = |o: &kube::core::DynamicObject| o.metadata.generation;
    assert_eq!(generation(&made), Some(1));
    let pp = PatchParams::default();
    let labelled = api
        .patch(
            "w",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_ne!(labelled.resource_version(), made.resource_version());
    let ready = json!({"status": {"ready": true}});
    let statused = api
        .patch_status("w", &pp, &Patch::Merge(&ready))
        .await
        .unwrap();
    let resized = api
        .patch("w", &pp, &Patch::Merge(json!({"spec": {"size": 2}})))
        .await
        .unwrap();
    assert_eq!(
        [
            generation(&labelled),
            generation(&statused),
            generation(&resized)
        ],
        [Some(1), Some(1), Some(2)],
        "metadata and status changes keep the generation, spec changes move it"
    );
    api.delete("w", &DeleteParams::default()).await.unwrap();
    let marked = api.get("w").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(
        generation(&marked),
        Some(3),
        "marking for deletion moves it too"
    );
    let release = json!({"metadata": {"finalizers": null}});
    api.patch("w", &pp, &Patch::Merge(&release)).await.unwrap();
    assert!(api.get_opt("w").await.unwrap().is_none());
}
on_both!(the_generation_moves_with_the_spec_and_the_deletion_mark_only);

/// Widget `owner` and a ConfigMap `<owner>-dep` it controls, held by a finalizer of its own.
async fn owner_with_held_dependent(widgets: &Api<Widget>, cms: &Api<ConfigMap>, owner: &str) {
    let w = widgets
        .create(
            &PostParams::default(),
            &Widget::new(owner, WidgetSpec { size: 1 }),
        )
        .await
        .unwrap();
    let mut dep: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": format!("{owner}-dep"), "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    dep.metadata.owner_references = Some(vec![w.controller_owner_ref(&()).unwrap()]);
    cms.create(&PostParams::default(), &dep).await.unwrap();
}

async fn foreground_deletion_keeps_the_owner_with_the_foreground_finalizer(t: Target) {
    let t = t.with_widgets().await;
    let widgets: Api<Widget> = t.api();
    let cms: Api<ConfigMap> = t.api();
    let mut shown = Vec::new();
    for (owner, policy) in [
        ("fg", DeleteParams::foreground()),
        ("bg", DeleteParams::background()),
    ] {
        owner_with_held_dependent(&widgets, &cms, owner).await;
        widgets.delete(owner, &policy).await.unwrap();
        shown.push(widgets.get_opt(owner).await.unwrap().map(|w| {
            (
                w.metadata.deletion_timestamp.is_some(),
                w.finalizers().to_vec(),
            )
        }));
    }
    assert_eq!(
        shown,
        [Some((true, vec!["foregroundDeletion".to_string()])), None],
        "the foreground-deleted owner waits for its dependents; the background-deleted one is gone"
    );
}
on_both!(foreground_deletion_keeps_the_owner_with_the_foreground_finalizer);

/// Emulator only: a bare kube-apiserver has no garbage collector, so dependents stay and a
/// foreground-deleted owner keeps its `foregroundDeletion` finalizer for ever.
#[tokio::test]
async fn foreground_deletion_waits_for_dependents_and_background_deletion_collects_them() {
    let (_emu, client) = with_widgets().await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (owner, policy) in [
        ("fg", DeleteParams::foreground()),
        ("bg", DeleteParams::background()),
    ] {
        owner_with_held_dependent(&widgets, &cms, owner).await;
        widgets.delete(owner, &policy).await.unwrap();
        let owner_left = widgets.get_opt(owner).await.unwrap();
        assert_eq!(
            owner_left.is_some(),
            owner == "fg",
            "{owner}: only foreground deletion keeps the owner"
        );
        let held = cms.get(&format!("{owner}-dep")).await.unwrap();
        assert!(
            held.metadata.deletion_timestamp.is_some(),
            "{owner}: the dependent is being deleted"
        );
        let release = json!({"metadata": {"finalizers": null}});
        cms.patch(
            &format!("{owner}-dep"),
            &PatchParams::default(),
            &Patch::Merge(&release),
        )
        .await
        .unwrap();
        assert!(
            widgets.get_opt(owner).await.unwrap().is_none(),
            "{owner}: the owner is gone at the end"
        );
    }
}
