//! Unit tests of field ownership and server-side apply.

use super::*;
use crate::apiserver::objects::fieldpath::leaves;

fn w(manager: &str, status_only: bool) -> Writer<'_> {
    Writer {
        manager,
        api_version: "v1",
        status_only,
        schema: None,
    }
}

fn managers(v: &Value) -> Vec<(String, String)> {
    read_entries(v)
        .into_iter()
        .map(|e| (e.manager, e.operation))
        .collect()
}

#[test]
fn an_update_gives_the_manager_the_fields_it_changed() {
    let old = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
    let mut created = old.clone();
    record_update(None, &mut created, w("creator", false));
    let mut new = created.clone();
    new["data"]["k"] = json!("w");
    record_update(Some(&created), &mut new, w("editor", false));
    let e = read_entries(&new);
    let editor = e.iter().find(|e| e.manager == "editor").unwrap();
    assert!(
        editor
            .paths
            .contains(&vec!["data".to_string(), "k".to_string()])
    );
    let creator = e.iter().find(|e| e.manager == "creator").unwrap();
    assert!(creator.paths.contains(&vec![
        "metadata".to_string(),
        "labels".to_string(),
        "x".to_string()
    ]));
    assert!(
        !creator
            .paths
            .contains(&vec!["data".to_string(), "k".to_string()])
    );
}

#[test]
fn applying_merges_maps_and_records_the_appliers_fields() {
    let live = json!({"metadata": {"name": "a", "labels": {"other": "1"}}, "spec": {"a": 1}});
    let out = apply(
        &live,
        &json!({"spec": {"b": 2}, "metadata": {"labels": {"mine": "2"}}}),
        w("me", false),
        false,
        false,
    )
    .unwrap();
    assert_eq!(out["spec"], json!({"a": 1, "b": 2}));
    assert_eq!(
        out["metadata"]["labels"],
        json!({"other": "1", "mine": "2"})
    );
    assert_eq!(
        managers(&out),
        vec![("me".to_string(), "Apply".to_string())]
    );
}

#[test]
fn fields_a_manager_stops_applying_are_removed() {
    let first = apply(
        &json!({}),
        &json!({"spec": {"a": 1, "b": 2}}),
        w("me", false),
        false,
        false,
    )
    .unwrap();
    let second = apply(
        &first,
        &json!({"spec": {"a": 1}}),
        w("me", false),
        false,
        false,
    )
    .unwrap();
    assert_eq!(second["spec"], json!({"a": 1}));
}

#[test]
fn a_map_left_empty_by_removed_fields_is_removed_too() {
    let first = apply(
        &json!({}),
        &json!({"status": {"ref": {"namespace": "ci", "name": "x"}, "phase": "a"}}),
        w("me", true),
        false,
        true,
    )
    .unwrap();
    let second = apply(
        &first,
        &json!({"status": {"phase": "b"}}),
        w("me", true),
        false,
        true,
    )
    .unwrap();
    assert_eq!(second["status"], json!({"phase": "b"}));
}

#[test]
fn applying_a_different_value_to_anothers_field_conflicts_unless_forced() {
    let first = apply(
        &json!({}),
        &json!({"spec": {"a": 1}}),
        w("one", false),
        false,
        false,
    )
    .unwrap();
    let c = apply(
        &first,
        &json!({"spec": {"a": 2}}),
        w("two", false),
        false,
        false,
    )
    .unwrap_err();
    assert_eq!(
        c,
        vec![Conflict {
            manager: "\"one\"".into(),
            field: ".spec.a".into()
        }]
    );
    assert!(
        apply(
            &first,
            &json!({"spec": {"a": 1}}),
            w("two", false),
            false,
            false
        )
        .is_ok()
    );
    let forced = apply(
        &first,
        &json!({"spec": {"a": 2}}),
        w("two", false),
        true,
        false,
    )
    .unwrap();
    assert_eq!(forced["spec"]["a"], 2);
    let one = read_entries(&forced)
        .into_iter()
        .find(|e| e.manager == "one");
    assert!(one.is_none(), "the forced field left the first manager");
}

#[test]
fn status_is_applied_only_through_the_status_subresource() {
    let live = json!({"spec": {"a": 1}, "status": {"s": "old"}});
    let main = apply(
        &live,
        &json!({"spec": {"a": 1}, "status": {"s": "new"}}),
        w("me", false),
        false,
        true,
    )
    .unwrap();
    assert_eq!(main["status"]["s"], "old");
    let st = apply(
        &live,
        &json!({"status": {"s": "new"}}),
        w("me", true),
        false,
        true,
    )
    .unwrap();
    assert_eq!(st["status"]["s"], "new");
    assert_eq!(read_entries(&st)[0].subresource, "status");
}

#[test]
fn fields_v1_round_trips() {
    let paths: PathSet = [
        vec!["spec".to_string(), "a".to_string()],
        vec![
            "metadata".to_string(),
            "labels".to_string(),
            "x".to_string(),
        ],
    ]
    .into();
    let v = to_fields_v1(&paths);
    assert_eq!(v["f:spec"]["f:a"], json!({}));
    let mut back = PathSet::new();
    from_fields_v1(&v, &mut Vec::new(), &mut back);
    assert_eq!(back, paths);
}

fn conditions_schema() -> Value {
    json!({"properties": {"status": {"properties": {"conditions": {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {"type": "object"}
    }}}}})
}

#[test]
fn two_managers_applying_different_conditions_of_a_map_list_keep_both() {
    let schema = conditions_schema();
    let by = |manager| Writer {
        manager,
        api_version: "v1",
        status_only: true,
        schema: Some(&schema),
    };
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let verified = json!({"status": {"conditions": [{"type": "Verified", "status": "False"}]}});
    let live = apply(&json!({}), &ready, by("reconciler"), false, true).unwrap();
    let live = apply(&live, &verified, by("verifier"), false, true).unwrap();
    let types: Vec<&str> = live["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["Ready", "Verified"]);
    let flipped = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let c = apply(&live, &flipped, by("verifier"), false, true).unwrap_err();
    assert_eq!(c[0].field, r#".status.conditions[type="Ready"].status"#);
    let dropped = apply(
        &live,
        &json!({"status": {"conditions": []}}),
        by("verifier"),
        false,
        true,
    )
    .unwrap();
    let left: Vec<&str> = dropped["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        vec!["Ready"],
        "the verifier's condition goes, the reconciler's stays"
    );
}

#[test]
fn keyed_segments_round_trip_through_fields_v1() {
    let live = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let paths = leaves(&live, true, Some(&conditions_schema()));
    let v = to_fields_v1(&paths);
    assert!(v["f:status"]["f:conditions"][r#"k:{"type":"Ready"}"#]["f:status"].is_object());
    let mut back = PathSet::new();
    from_fields_v1(&v, &mut Vec::new(), &mut back);
    assert_eq!(back, paths);
}
