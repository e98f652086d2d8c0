//! Patches (merge, JSON with `test`, strategic) and server-side apply. Every scenario runs on
//! both servers.

use crate::{Target, Widget, WidgetSpec};
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

async fn a_merge_patch_sets_and_removes_fields(t: Target) {
    let api: Api<ConfigMap> = t.api();
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
on_both!(a_merge_patch_sets_and_removes_fields);

async fn a_json_patch_whose_test_fails_is_rejected_and_changes_nothing(t: Target) {
    let api: Api<ConfigMap> = t.api();
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
        matches!(err, kube::Error::Api(ref s) if (s.code, s.reason.as_str()) == (422, "Invalid")),
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
on_both!(a_json_patch_whose_test_fails_is_rejected_and_changes_nothing);

async fn a_strategic_merge_patch_merges_finalizers_on_builtins_and_is_refused_for_custom_objects(
    t: Target,
) {
    let t = t.with_widgets().await;
    let api: Api<ConfigMap> = t.api();
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
    // The patch's elements come first, as strategicpatch orders a merged list.
    assert_eq!(c.finalizers(), &["c/d".to_string(), "a/b".to_string()]);
    let widgets: Api<Widget> = t.api();
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
        matches!(err, kube::Error::Api(ref s) if (s.code, s.reason.as_str()) == (415, "UnsupportedMediaType")),
        "{err:?}"
    );
}
on_both!(a_strategic_merge_patch_merges_finalizers_on_builtins_and_is_refused_for_custom_objects);

async fn server_side_apply_creates_a_missing_object_and_records_its_field_manager(t: Target) {
    let api: Api<ConfigMap> = t.api();
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
on_both!(server_side_apply_creates_a_missing_object_and_records_its_field_manager);

async fn server_side_apply_conflicts_with_another_manager_unless_forced(t: Target) {
    let api: Api<ConfigMap> = t.api();
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
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert_eq!(
                s.message,
                "Apply failed with 1 conflict: conflict with \"one\": .data.x"
            );
            let cause = &s.details.unwrap().causes[0];
            assert_eq!(
                (
                    cause.reason.as_str(),
                    cause.field.as_str(),
                    cause.message.as_str()
                ),
                ("FieldManagerConflict", ".data.x", "conflict with \"one\"")
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let c = api
        .patch("c", &PatchParams::apply("two").force(), &Patch::Apply(&two))
        .await
        .unwrap();
    assert_eq!(c.data.unwrap()["x"], "2");
}
on_both!(server_side_apply_conflicts_with_another_manager_unless_forced);

async fn server_side_apply_removes_fields_the_manager_no_longer_applies(t: Target) {
    let api: Api<ConfigMap> = t.api();
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
on_both!(server_side_apply_removes_fields_the_manager_no_longer_applies);

async fn status_applied_through_the_status_subresource_leaves_spec_alone(t: Target) {
    let t = t.with_widgets().await;
    let api: Api<Widget> = t.api();
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
on_both!(status_applied_through_the_status_subresource_leaves_spec_alone);

async fn managers_applying_different_conditions_of_a_map_list_keep_each_others(t: Target) {
    use crate::dyn_widget;
    let t = t.with_widgets().await;
    let api = t.widgets();
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
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            let cause = &s.details.unwrap().causes[0];
            assert_eq!(
                (
                    cause.reason.as_str(),
                    cause.field.as_str(),
                    cause.message.as_str()
                ),
                (
                    "FieldManagerConflict",
                    ".status.conditions[type=\"Ready\"].status",
                    "conflict with \"reconciler\" with subresource \"status\""
                )
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}
on_both!(managers_applying_different_conditions_of_a_map_list_keep_each_others);

async fn a_patch_or_apply_that_changes_nothing_keeps_the_resource_version(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
    let pp = PatchParams::apply("owner");
    let made = api.patch("c", &pp, &Patch::Apply(&applied)).await.unwrap();
    let again = api.patch("c", &pp, &Patch::Apply(&applied)).await.unwrap();
    let same = json!({"data": {"x": "1"}});
    let merged = api
        .patch("c", &PatchParams::default(), &Patch::Merge(&same))
        .await
        .unwrap();
    assert_eq!(
        [again.resource_version(), merged.resource_version()],
        [made.resource_version(), made.resource_version()]
    );
}
on_both!(a_patch_or_apply_that_changes_nothing_keeps_the_resource_version);

async fn an_apply_conflicting_with_an_update_names_the_updater_and_its_api_version(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let c: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"x": "1"}})).unwrap();
    let by_editor = PostParams {
        field_manager: Some("editor".into()),
        ..Default::default()
    };
    api.create(&by_editor, &c).await.unwrap();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "2"}});
    let err = api
        .patch("c", &PatchParams::apply("owner"), &Patch::Apply(&applied))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            let cause = &s.details.unwrap().causes[0];
            assert_eq!(
                (cause.reason.as_str(), cause.field.as_str()),
                ("FieldManagerConflict", ".data.x")
            );
            assert_eq!(cause.message, "conflict with \"editor\" using v1");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}
on_both!(an_apply_conflicting_with_an_update_names_the_updater_and_its_api_version);

async fn server_side_apply_refuses_a_field_the_schema_does_not_declare(t: Target) {
    // Create and update prune an unknown field silently; apply builds a typed object first and
    // refuses it, naming the field (how a misplaced field in a test manifest came to light).
    let t = t.with_widgets().await;
    let widgets = t.widgets();
    let applied = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1, "colour": "red"},
    });
    let e = widgets
        .patch("w", &PatchParams::apply("owner"), &Patch::Apply(&applied))
        .await
        .expect_err("an undeclared field is refused");
    let kube::Error::Api(status) = e else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!(status.code, 500, "{status:?}");
    assert!(
        status
            .message
            .ends_with(".spec.colour: field not declared in schema"),
        "{}",
        status.message
    );
    assert!(
        widgets.get_opt("w").await.unwrap().is_none(),
        "nothing stored"
    );
}
on_both!(server_side_apply_refuses_a_field_the_schema_does_not_declare);
