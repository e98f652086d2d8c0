//! Write-time behaviour of built-in kinds and dry runs. Every scenario runs on both servers.

use crate::Target;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

async fn a_secrets_string_data_is_stored_as_base64_data(t: Target) {
    let api: Api<Secret> = t.api();
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
on_both!(a_secrets_string_data_is_stored_as_base64_data);

async fn namespaces_carry_their_name_as_a_label_for_selectors(t: Target) {
    let api: Api<Namespace> = Api::all(t.client.clone());
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
    let mine = api.get(t.ns()).await.unwrap();
    assert_eq!(mine.labels()["kubernetes.io/metadata.name"], t.ns());
}
on_both!(namespaces_carry_their_name_as_a_label_for_selectors);

async fn a_dry_run_create_or_delete_changes_nothing(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let rv = t.emulator_handle().map(|e| e.resource_version());
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let shown = api.create(&dry, &cm).await.unwrap();
    assert_eq!(shown.name_any(), "c");
    assert!(
        shown.uid().is_some(),
        "a dry run shows what would be stored"
    );
    assert!(api.get_opt("c").await.unwrap().is_none());
    // The emulator's resourceVersion is its own; on a shared server others move it.
    assert_eq!(t.emulator_handle().map(|e| e.resource_version()), rv);
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
on_both!(a_dry_run_create_or_delete_changes_nothing);

async fn events_published_by_kubes_recorder_are_visible_as_core_events(t: Target) {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder};
    let client = t.client.clone();
    let cms: Api<ConfigMap> = t.api();
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
    let core: Api<CoreEvent> = t.api();
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
    let new_api: Api<k8s_openapi::api::events::v1::Event> = t.api();
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
on_both!(events_published_by_kubes_recorder_are_visible_as_core_events);

async fn an_unknown_field_validation_directive_is_refused_as_invalid_create_options(t: Target) {
    let req = hyper::Request::builder()
        .method("POST")
        .uri(format!(
            "/api/v1/namespaces/{}/configmaps?fieldValidation=Sloppy",
            t.ns()
        ))
        .header("content-type", "application/json")
        .body(br#"{"metadata":{"name":"c"}}"#.to_vec())
        .unwrap();
    match t.client.request_text(req).await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            let details = s.details.unwrap();
            assert_eq!(
                (details.group.as_str(), details.kind.as_str()),
                ("meta.k8s.io", "CreateOptions")
            );
            let cause = &details.causes[0];
            assert_eq!(
                (cause.field.as_str(), cause.reason.as_str()),
                ("fieldValidation", "FieldValueNotSupported")
            );
        }
        other => panic!("expected a 422, got {other:?}"),
    }
}
on_both!(an_unknown_field_validation_directive_is_refused_as_invalid_create_options);

async fn metadata_a_real_cluster_refuses_is_refused_with_invalid(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let long_label =
        json!({"metadata": {"name": "a", "labels": {"patchbay.dev/token": "t".repeat(64)}}});
    let plain_finalizer = json!({"metadata": {"name": "b", "finalizers": ["cleanup"]}});
    let bad_name = json!({"metadata": {"name": "Not_A_Name"}});
    for (body, field) in [
        (long_label, "metadata.labels"),
        (plain_finalizer, "metadata.finalizers[0]"),
        (bad_name, "metadata.name"),
    ] {
        let cm: ConfigMap = serde_json::from_value(body).unwrap();
        match api.create(&PostParams::default(), &cm).await.unwrap_err() {
            kube::Error::Api(s) => {
                assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
                let details = s.details.unwrap();
                assert_eq!(details.kind, "ConfigMap");
                let cause = &details.causes[0];
                assert_eq!(
                    (cause.field.as_str(), cause.reason.as_str()),
                    (field, "FieldValueInvalid"),
                    "{}",
                    s.message
                );
            }
            other => panic!("expected 422, got {other:?}"),
        }
    }
}
on_both!(metadata_a_real_cluster_refuses_is_refused_with_invalid);

async fn the_servers_kubeconfig_works_with_kubes_own_loader(t: Target) {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let path = match t.emulator_handle() {
        Some(emu) => {
            let path = std::env::temp_dir().join(format!("patchbay-kubeconfig-{}", t.id()));
            emu.write_kubeconfig(&path).unwrap();
            path
        }
        None => t
            .server
            .kubeconfig_path(testkit::envtest::Identity::Admin)
            .unwrap(),
    };
    let kc = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    assert!(namespaces.get_opt("kube-system").await.unwrap().is_some());
    if t.emulator_handle().is_some() {
        let _ = std::fs::remove_file(&path);
    }
}
on_both!(the_servers_kubeconfig_works_with_kubes_own_loader);
