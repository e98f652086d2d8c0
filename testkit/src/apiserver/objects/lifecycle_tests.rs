//! Unit tests of the verb semantics, against the store alone.

use super::lifecycle::{DeleteOptions, Manager, Part};
use crate::apiserver::store::resources::ResourceInfo;
use crate::apiserver::store::{Store, StoreOptions};
use serde_json::{Value, json};
use std::sync::Arc;

const M: Manager<'static> = Manager::Update("test");

fn setup() -> (Store, Arc<ResourceInfo>, Arc<ResourceInfo>) {
    let mut s = Store::new(StoreOptions::default());
    let ns = s.registry.get("", "v1", "namespaces").unwrap();
    s.create(&ns, "", json!({"metadata": {"name": "a"}}), M)
        .unwrap();
    let crds = s
        .registry
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .unwrap();
    let crd = json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    s.create(&crds, "", crd, M).unwrap();
    let widgets = s.registry.get("example.com", "v1", "widgets").unwrap();
    let cms = s.registry.get("", "v1", "configmaps").unwrap();
    (s, widgets, cms)
}

fn widget(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"size": 1}, "status": {"ok": true}})
}

#[test]
fn creating_in_a_missing_namespace_is_refused_with_not_found() {
    let (mut s, _, cms) = setup();
    let e = s
        .create(&cms, "nope", json!({"metadata": {"name": "x"}}), M)
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
}

#[test]
fn creating_twice_is_already_exists_and_generate_name_makes_unique_names() {
    let (mut s, _, cms) = setup();
    s.create(&cms, "a", json!({"metadata": {"name": "x"}}), M)
        .unwrap();
    assert_eq!(
        s.create(&cms, "a", json!({"metadata": {"name": "x"}}), M)
            .unwrap_err()
            .code,
        409
    );
    let g1 = s
        .create(&cms, "a", json!({"metadata": {"generateName": "x-"}}), M)
        .unwrap();
    let name = g1.value["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("x-") && name.len() == 7, "{name}");
}

#[test]
fn a_custom_object_drops_status_on_create_and_gets_generation_one() {
    let (mut s, w, _) = setup();
    let o = s.create(&w, "a", widget("w"), M).unwrap();
    assert!(o.value.get("status").is_none());
    assert_eq!(o.value["metadata"]["generation"], 1);
    assert!(!o.value["metadata"]["uid"].as_str().unwrap().is_empty());
}

#[test]
fn generation_moves_on_spec_changes_only() {
    let (mut s, w, _) = setup();
    s.create(&w, "a", widget("w"), M).unwrap();
    let mut v = s.get_object(&w, "a", "w").unwrap().value.clone();
    v["metadata"]["labels"] = json!({"x": "y"});
    let o = s.update(&w, "a", "w", v.clone(), Part::Main, M).unwrap();
    assert_eq!(o.value["metadata"]["generation"], 1);
    let mut st = o.value.clone();
    st["status"] = json!({"ok": true});
    let o = s.update(&w, "a", "w", st, Part::Status, M).unwrap();
    assert_eq!(
        (
            o.value["metadata"]["generation"].clone(),
            o.value["status"]["ok"].clone()
        ),
        (json!(1), json!(true))
    );
    let mut sp = o.value.clone();
    sp["spec"]["size"] = json!(2);
    sp["status"] = json!({"ok": false});
    let o = s.update(&w, "a", "w", sp, Part::Main, M).unwrap();
    assert_eq!(o.value["metadata"]["generation"], 2);
    assert_eq!(
        o.value["status"]["ok"], true,
        "the main resource cannot change status"
    );
}

#[test]
fn a_status_update_cannot_change_spec_or_labels() {
    let (mut s, w, _) = setup();
    let o = s.create(&w, "a", widget("w"), M).unwrap();
    let mut v = o.value.clone();
    v["spec"]["size"] = json!(9);
    v["metadata"]["labels"] = json!({"sneaky": "1"});
    v["status"] = json!({"ok": true});
    let o = s.update(&w, "a", "w", v, Part::Status, M).unwrap();
    assert_eq!(o.value["spec"]["size"], 1);
    assert!(o.value["metadata"].get("labels").is_none());
}

#[test]
fn an_update_with_a_stale_resource_version_conflicts() {
    let (mut s, _, cms) = setup();
    let o = s
        .create(
            &cms,
            "a",
            json!({"metadata": {"name": "x"}, "data": {"a": "1"}}),
            M,
        )
        .unwrap();
    let mut v = o.value.clone();
    v["data"]["a"] = json!("2");
    s.update(&cms, "a", "x", v.clone(), Part::Main, M).unwrap();
    v["data"]["a"] = json!("3");
    let e = s.update(&cms, "a", "x", v, Part::Main, M).unwrap_err();
    assert_eq!((e.code, e.reason), (409, "Conflict"));
}

#[test]
fn an_update_that_changes_nothing_keeps_the_resource_version() {
    let (mut s, _, cms) = setup();
    let o = s
        .create(
            &cms,
            "a",
            json!({"metadata": {"name": "x"}, "data": {"a": "1"}}),
            M,
        )
        .unwrap();
    let again = s
        .update(&cms, "a", "x", o.value.clone(), Part::Main, M)
        .unwrap();
    assert_eq!(
        again.value["metadata"]["resourceVersion"],
        o.value["metadata"]["resourceVersion"]
    );
}

#[test]
fn finalizers_keep_a_deleted_object_until_they_are_removed() {
    let (mut s, w, _) = setup();
    let mut v = widget("w");
    v["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    s.create(&w, "a", v, M).unwrap();
    let d = s.delete(&w, "a", "w", &DeleteOptions::default()).unwrap();
    assert!(d.pending);
    assert!(d.object.value["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(d.object.value["metadata"]["generation"], 2);
    let mut v = d.object.value.clone();
    v["metadata"]["finalizers"] = json!(["example.com/cleanup", "another"]);
    assert_eq!(
        s.update(&w, "a", "w", v.clone(), Part::Main, M)
            .unwrap_err()
            .code,
        422
    );
    v["metadata"]["finalizers"] = json!([]);
    s.update(&w, "a", "w", v, Part::Main, M).unwrap();
    assert_eq!(s.get_object(&w, "a", "w").unwrap_err().code, 404);
}

#[test]
fn deleting_an_owner_garbage_collects_its_dependents() {
    let (mut s, w, cms) = setup();
    let owner = s.create(&w, "a", widget("w"), M).unwrap();
    let uid = owner.value["metadata"]["uid"].clone();
    let dep = json!({"metadata": {"name": "d", "ownerReferences": [{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": uid}]}});
    s.create(&cms, "a", dep, M).unwrap();
    s.create(&cms, "a", json!({"metadata": {"name": "unrelated"}}), M)
        .unwrap();
    s.delete(&w, "a", "w", &DeleteOptions::default()).unwrap();
    assert_eq!(s.get_object(&cms, "a", "d").unwrap_err().code, 404);
    assert!(s.get_object(&cms, "a", "unrelated").is_ok());
}

#[test]
fn orphan_propagation_keeps_dependents_without_the_owner_reference() {
    let (mut s, w, cms) = setup();
    let owner = s.create(&w, "a", widget("w"), M).unwrap();
    let dep = json!({"metadata": {"name": "d", "ownerReferences": [{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": owner.value["metadata"]["uid"]}]}});
    s.create(&cms, "a", dep, M).unwrap();
    s.delete(
        &w,
        "a",
        "w",
        &DeleteOptions {
            orphan: true,
            ..Default::default()
        },
    )
    .unwrap();
    let d = s.get_object(&cms, "a", "d").unwrap();
    assert_eq!(d.value["metadata"]["ownerReferences"], json!([]));
}

#[test]
fn deleting_a_namespace_removes_its_contents_after_their_finalizers() {
    let (mut s, w, cms) = setup();
    let ns = s.registry.get("", "v1", "namespaces").unwrap();
    s.create(&cms, "a", json!({"metadata": {"name": "x"}}), M)
        .unwrap();
    let mut v = widget("w");
    v["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    s.create(&w, "a", v, M).unwrap();
    let d = s.delete(&ns, "", "a", &DeleteOptions::default()).unwrap();
    assert!(d.pending);
    assert_eq!(d.object.value["status"]["phase"], "Terminating");
    assert_eq!(s.get_object(&cms, "a", "x").unwrap_err().code, 404);
    assert_eq!(
        s.create(&cms, "a", json!({"metadata": {"name": "y"}}), M)
            .unwrap_err()
            .code,
        403
    );
    let mut w1 = s.get_object(&w, "a", "w").unwrap().value.clone();
    w1["metadata"]["finalizers"] = json!([]);
    s.update(&w, "a", "w", w1, Part::Main, M).unwrap();
    assert_eq!(s.get_object(&ns, "", "a").unwrap_err().code, 404);
}

#[test]
fn deleting_a_crd_stops_serving_its_resource_and_removes_its_objects() {
    let (mut s, w, _) = setup();
    s.create(&w, "a", widget("w"), M).unwrap();
    let crds = s
        .registry
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .unwrap();
    let crd = s.get_object(&crds, "", "widgets.example.com").unwrap();
    assert_eq!(crd.value["status"]["conditions"][1]["type"], "Established");
    s.delete(&crds, "", "widgets.example.com", &DeleteOptions::default())
        .unwrap();
    assert!(s.registry.get("example.com", "v1", "widgets").is_none());
    assert_eq!(s.count(&w.group_resource()), 0);
}

#[test]
fn a_dependent_whose_owners_are_all_gone_is_garbage_collected_after_its_write() {
    let (mut s, _, cms) = setup();
    let dep = json!({"metadata": {"name": "d", "ownerReferences": [{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "no-such-uid"}]}});
    let written = s.create(&cms, "a", dep, M).unwrap();
    assert_eq!(written.value["metadata"]["name"], "d");
    assert_eq!(s.get_object(&cms, "a", "d").unwrap_err().code, 404);
}

#[test]
fn foreground_deletion_keeps_the_owner_until_its_dependents_are_gone() {
    let (mut s, w, cms) = setup();
    let owner = s.create(&w, "a", widget("w"), M).unwrap();
    let refs = json!([{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": owner.value["metadata"]["uid"]}]);
    let mut blocked =
        json!({"metadata": {"name": "slow", "ownerReferences": refs, "finalizers": ["x/y"]}});
    s.create(&cms, "a", blocked.clone(), M).unwrap();
    s.create(
        &cms,
        "a",
        json!({"metadata": {"name": "fast", "ownerReferences": refs}}),
        M,
    )
    .unwrap();
    let d = s
        .delete(
            &w,
            "a",
            "w",
            &DeleteOptions {
                foreground: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(d.pending);
    assert_eq!(
        d.object.value["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert_eq!(s.get_object(&cms, "a", "fast").unwrap_err().code, 404);
    assert!(
        s.get_object(&w, "a", "w").is_ok(),
        "a dependent with a finalizer still blocks"
    );
    blocked = s.get_object(&cms, "a", "slow").unwrap().value.clone();
    blocked["metadata"]["finalizers"] = json!([]);
    s.update(&cms, "a", "slow", blocked, Part::Main, M).unwrap();
    assert_eq!(s.get_object(&w, "a", "w").unwrap_err().code, 404);
}

#[test]
fn an_owner_in_another_namespace_does_not_keep_a_dependent_alive() {
    let (mut s, w, cms) = setup();
    let ns = s.registry.get("", "v1", "namespaces").unwrap();
    s.create(&ns, "", json!({"metadata": {"name": "b"}}), M)
        .unwrap();
    let owner = s.create(&w, "a", widget("w"), M).unwrap();
    let refs = json!([{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": owner.value["metadata"]["uid"]}]);
    s.create(
        &cms,
        "a",
        json!({"metadata": {"name": "same", "ownerReferences": refs}}),
        M,
    )
    .unwrap();
    s.create(
        &cms,
        "b",
        json!({"metadata": {"name": "across", "ownerReferences": refs}}),
        M,
    )
    .unwrap();
    assert!(s.get_object(&cms, "a", "same").is_ok());
    assert_eq!(s.get_object(&cms, "b", "across").unwrap_err().code, 404);
}
