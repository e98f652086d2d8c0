//! Patches (merge, JSON with `test`, strategic) and server-side apply.

use crate::{Widget, WidgetSpec, emulator, with_widgets};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

async fn configmap(api: &Api<ConfigMap>, name: &str) -> ConfigMap {
    let c: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"a": "1"}}, "data": {"x": "1"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &c).await.unwrap()
}

#[tokio::test]
async fn a_merge_patch_sets_and_removes_fields() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    configmap(&api, "c").await;
    let patch = json!({"data": {"x": null, "y": "2"}, "metadata": {"labels": {"b": "2"}}});
    let c = api
        .patch("c", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(
        c.data.unwrap().into_iter().collect::<Vec<_>>(),
        vec![("y".to_string(), "2".to_string())]
    );
    assert_eq!(c.metadata.labels.unwrap().len(), 2);
}

#[tokio::test]
async fn a_json_patch_whose_test_fails_is_rejected_and_changes_nothing() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let before = configmap(&api, "c").await;
    let bad: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/x", "value": "not-1"},
        {"op": "replace", "path": "/data/x", "value": "2"}
    ]))
    .unwrap();
    let err = api
        .patch("c", &PatchParams::default(), &Patch::<()>::Json(bad))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    assert_eq!(
        api.get("c").await.unwrap().resource_version(),
        before.resource_version()
    );
    let good: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/x", "value": "1"},
        {"op": "replace", "path": "/data/x", "value": "2"}
    ]))
    .unwrap();
    let c = api
        .patch("c", &PatchParams::default(), &Patch::<()>::Json(good))
        .await
        .unwrap();
    assert_eq!(c.data.unwrap()["x"], "2");
}

#[tokio::test]
async fn a_strategic_merge_patch_merges_finalizers_on_builtins_and_is_refused_for_custom_objects() {
    let (_emu, client) = with_widgets().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    configmap(&api, "c").await;
    let p = json!({"metadata": {"finalizers": ["a/b"]}});
    api.patch("c", &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .unwrap();
    let p = json!({"metadata": {"finalizers": ["c/d"]}});
    let c = api
        .patch("c", &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .unwrap();
    assert_eq!(c.finalizers(), &["a/b".to_string(), "c/d".to_string()]);
    let widgets: Api<Widget> = Api::namespaced(client, "default");
    widgets
        .create(
            &PostParams::default(),
            &Widget::new("w", WidgetSpec { size: 1 }),
        )
        .await
        .unwrap();
    let err = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(&json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 415),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_side_apply_creates_a_missing_object_and_records_its_field_manager() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
    let c = api
        .patch("c", &PatchParams::apply("owner"), &Patch::Apply(&applied))
        .await
        .unwrap();
    assert!(c.uid().is_some());
    let mf = c.metadata.managed_fields.unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("owner"), Some("Apply"))
    );
    assert!(mf[0].fields_v1.as_ref().unwrap().0["f:data"]["f:x"].is_object());
}

#[tokio::test]
async fn server_side_apply_conflicts_with_another_manager_unless_forced() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let one = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
    api.patch("c", &PatchParams::apply("one"), &Patch::Apply(&one))
        .await
        .unwrap();
    let two = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "2"}});
    let err = api
        .patch("c", &PatchParams::apply("two"), &Patch::Apply(&two))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(s.message.contains("conflict with \"one\""), "{}", s.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let c = api
        .patch("c", &PatchParams::apply("two").force(), &Patch::Apply(&two))
        .await
        .unwrap();
    assert_eq!(c.data.unwrap()["x"], "2");
}

#[tokio::test]
async fn server_side_apply_removes_fields_the_manager_no_longer_applies() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"keep": "1", "drop": "1"}}});
    api.patch("c", &PatchParams::apply("me"), &Patch::Apply(&first))
        .await
        .unwrap();
    let other = json!({"metadata": {"labels": {"theirs": "1"}}});
    api.patch("c", &PatchParams::default(), &Patch::Merge(&other))
        .await
        .unwrap();
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"keep": "1"}}});
    let c = api
        .patch("c", &PatchParams::apply("me"), &Patch::Apply(&second))
        .await
        .unwrap();
    let labels = c.labels();
    assert!(
        labels.contains_key("keep")
            && labels.contains_key("theirs")
            && !labels.contains_key("drop"),
        "{labels:?}"
    );
}

#[tokio::test]
async fn status_applied_through_the_status_subresource_leaves_spec_alone() {
    let (_emu, client) = with_widgets().await;
    let api: Api<Widget> = Api::namespaced(client, "default");
    api.create(
        &PostParams::default(),
        &Widget::new("w", WidgetSpec { size: 1 }),
    )
    .await
    .unwrap();
    let status =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"ready": true}});
    let w = api
        .patch_status(
            "w",
            &PatchParams::apply("ctl").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert!(w.status.unwrap().ready);
    assert_eq!((w.spec.size, w.metadata.generation), (1, Some(1)));
    let mf = w.metadata.managed_fields.unwrap();
    assert!(
        mf.iter()
            .any(|m| m.manager.as_deref() == Some("ctl")
                && m.subresource.as_deref() == Some("status"))
    );
}

#[tokio::test]
async fn managers_applying_different_conditions_of_a_map_list_keep_each_others() {
    use crate::{dyn_widget, widget_resource};
    use kube::core::DynamicObject;
    let (_emu, client) = with_widgets().await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_resource());
    api.create(&PostParams::default(), &dyn_widget("w", 1))
        .await
        .unwrap();
    let condition = |t: &str, s: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "status": {"conditions": [{"type": t, "status": s}]}})
    };
    api.patch_status(
        "w",
        &PatchParams::apply("reconciler"),
        &Patch::Apply(condition("Ready", "True")),
    )
    .await
    .unwrap();
    let w = api
        .patch_status(
            "w",
            &PatchParams::apply("verifier"),
            &Patch::Apply(condition("Verified", "False")),
        )
        .await
        .unwrap();
    let types: Vec<&str> = w.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["Ready", "Verified"]);
    let err = api
        .patch_status(
            "w",
            &PatchParams::apply("verifier"),
            &Patch::Apply(condition("Ready", "False")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.message.contains("reconciler")),
        "{err:?}"
    );
}
