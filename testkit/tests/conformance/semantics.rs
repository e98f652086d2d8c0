//! Write-time behaviour of built-in kinds and dry runs.

use crate::emulator;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn a_secrets_string_data_is_stored_as_base64_data() {
    let emu = emulator().await;
    let api: Api<Secret> = Api::namespaced(emu.client(), "default");
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "stringData": {"token": "hunter2"}
    }))
    .unwrap();
    let made = api.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(made.type_.as_deref(), Some("Opaque"));
    assert!(made.string_data.is_none());
    assert_eq!(made.data.unwrap()["token"], ByteString(b"hunter2".to_vec()));
}

#[tokio::test]
async fn namespaces_carry_their_name_as_a_label_for_selectors() {
    let emu = emulator().await;
    let api: Api<Namespace> = Api::all(emu.client());
    let ns = api.get("kube-system").await.unwrap();
    assert_eq!(ns.labels()["kubernetes.io/metadata.name"], "kube-system");
    let picked = api
        .list(&ListParams::default().labels("kubernetes.io/metadata.name in (default)"))
        .await
        .unwrap();
    assert_eq!(
        picked
            .items
            .iter()
            .map(|n| n.name_any())
            .collect::<Vec<_>>(),
        vec!["default"]
    );
}

#[tokio::test]
async fn a_dry_run_create_or_delete_changes_nothing() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let rv = emu.resource_version();
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let shown = api.create(&dry, &cm).await.unwrap();
    assert_eq!(shown.name_any(), "c");
    assert!(api.get_opt("c").await.unwrap().is_none());
    assert_eq!(emu.resource_version(), rv);
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete(
        "c",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(api.get_opt("c").await.unwrap().is_some());
}

#[tokio::test]
async fn events_published_by_kubes_recorder_are_visible_as_core_events() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder};
    let emu = emulator().await;
    let client = emu.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
    let recorder = Recorder::new(client.clone(), "test-controller".into());
    let ev = Event {
        type_: EventType::Normal,
        reason: "Minted".into(),
        note: Some("minted a token".into()),
        action: "Mint".into(),
        secondary: None,
    };
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let fields = format!(
        "involvedObject.name=c,involvedObject.uid={}",
        cm.uid().unwrap()
    );
    let found = core
        .list(&ListParams::default().fields(&fields))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1, "{found:?}");
    let e = &found.items[0];
    assert_eq!(
        (e.reason.as_deref(), e.message.as_deref()),
        (Some("Minted"), Some("minted a token"))
    );
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(Some(2)));
    let new_api: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(core.into_client(), "default");
    let by_regarding = new_api
        .list(&ListParams::default().fields("regarding.name=c"))
        .await
        .unwrap();
    assert_eq!(by_regarding.items.len(), 1);
    assert_eq!(
        by_regarding.items[0].note.as_deref(),
        Some("minted a token")
    );
}

#[tokio::test]
async fn an_unknown_field_validation_directive_is_a_bad_request() {
    let emu = emulator().await;
    let req = hyper::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/configmaps?fieldValidation=Sloppy")
        .header("content-type", "application/json")
        .body(br#"{"metadata":{"name":"c"}}"#.to_vec())
        .unwrap();
    match emu.client().request_text(req).await.unwrap_err() {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest")),
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents_and_background_deletion_collects_them() {
    use crate::{Widget, WidgetSpec, with_widgets};
    use kube::Resource;
    use kube::api::{Patch, PatchParams};
    let (_emu, client) = with_widgets().await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (owner, policy) in [
        ("fg", DeleteParams::foreground()),
        ("bg", DeleteParams::background()),
    ] {
        let w = widgets
            .create(
                &PostParams::default(),
                &Widget::new(owner, WidgetSpec { size: 1 }),
            )
            .await
            .unwrap();
        let mut dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("{owner}-dep"), "finalizers": ["example.com/hold"]}})).unwrap();
        dep.metadata.owner_references = Some(vec![w.controller_owner_ref(&()).unwrap()]);
        cms.create(&PostParams::default(), &dep).await.unwrap();
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

#[tokio::test]
async fn metadata_a_real_cluster_refuses_is_refused_with_invalid() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let long_label =
        json!({"metadata": {"name": "a", "labels": {"patchbay.dev/token": "t".repeat(64)}}});
    let plain_finalizer = json!({"metadata": {"name": "b", "finalizers": ["cleanup"]}});
    for (body, field) in [
        (long_label, "metadata.labels.patchbay.dev/token"),
        (plain_finalizer, "metadata.finalizers[0]"),
    ] {
        let cm: ConfigMap = serde_json::from_value(body).unwrap();
        match api.create(&PostParams::default(), &cm).await.unwrap_err() {
            kube::Error::Api(s) => {
                assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
                assert_eq!(s.details.unwrap().causes[0].field, field);
            }
            other => panic!("expected 422, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_written_kubeconfig_works_with_kubes_own_loader() {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let emu = emulator().await;
    let path = std::env::temp_dir().join(format!(
        "patchbay-kubeconfig-{}-{}",
        std::process::id(),
        emu.resource_version()
    ));
    emu.write_kubeconfig(&path).unwrap();
    let kc = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    assert!(namespaces.get_opt("kube-system").await.unwrap().is_some());
    let _ = std::fs::remove_file(&path);
}
