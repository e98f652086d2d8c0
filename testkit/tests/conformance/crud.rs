//! Discovery, create/get/list/update/delete, object metadata and Status errors. Every scenario
//! runs on both servers.

use crate::{Target, Widget, WidgetSpec, WidgetStatus, dyn_widget, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::discovery::Discovery;
use std::collections::BTreeMap;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    c.data = Some(BTreeMap::from([("k".to_string(), "v".to_string())]));
    c
}

fn status_of(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn discovery_lists_the_builtins_and_a_crds_resource_with_its_short_names(t: Target) {
    let t = t.with_widgets().await;
    let v = t.client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    // A CRD's group reaches discovery a moment after its resource is served.
    let d = eventually(30, "example.com in discovery", || async {
        let d = Discovery::new(t.client.clone()).run().await.ok()?;
        d.has_group("example.com").then_some(d)
    })
    .await;
    let groups: Vec<String> = d.groups().map(|g| g.name().to_string()).collect();
    for g in [
        "",
        "coordination.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
        "example.com",
    ] {
        assert!(
            groups.contains(&g.to_string()),
            "{g} missing from {groups:?}"
        );
    }
    let (ar, caps) = d
        .groups()
        .find(|g| g.name() == "example.com")
        .unwrap()
        .recommended_kind("Widget")
        .unwrap();
    assert_eq!(ar.plural, "widgets");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
}
on_both!(discovery_lists_the_builtins_and_a_crds_resource_with_its_short_names);

async fn aggregated_discovery_lists_the_builtins_and_the_crds_resources(t: Target) {
    let t = t.with_widgets().await;
    let d = eventually(30, "example.com in aggregated discovery", || async {
        let d = Discovery::new(t.client.clone())
            .run_aggregated()
            .await
            .ok()?;
        d.has_group("example.com").then_some(d)
    })
    .await;
    let (ar, caps) = d
        .groups()
        .find(|g| g.name() == "example.com")
        .unwrap()
        .recommended_kind("Widget")
        .unwrap();
    assert_eq!(
        (ar.plural.as_str(), caps.scope.clone()),
        ("widgets", kube::discovery::Scope::Namespaced)
    );
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
    let core = d.groups().find(|g| g.name() == "").unwrap();
    assert!(core.recommended_kind("ConfigMap").is_some());
    assert!(d.groups().any(|g| g.name() == "coordination.k8s.io"));
}
on_both!(aggregated_discovery_lists_the_builtins_and_the_crds_resources);

async fn a_new_crd_is_established_and_its_resource_served(t: Target) {
    let t = t.with_widgets().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(t.client.clone());
    let crd = crds.get("widgets.example.com").await.unwrap();
    let conds = crd.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    let w = t
        .api::<Widget>()
        .create(
            &PostParams::default(),
            &Widget::new("w", WidgetSpec { size: 1 }),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
}
on_both!(a_new_crd_is_established_and_its_resource_served);

async fn created_objects_get_uid_creation_timestamp_and_increasing_resource_versions(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let a = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &cm("b", &[]))
        .await
        .unwrap();
    assert!(a.uid().is_some_and(|u| u.len() == 36));
    assert_ne!(a.uid(), b.uid());
    assert!(a.creation_timestamp().is_some());
    let rv = |o: &ConfigMap| o.resource_version().unwrap().parse::<u64>().unwrap();
    assert!(rv(&b) > rv(&a));
}
on_both!(created_objects_get_uid_creation_timestamp_and_increasing_resource_versions);

async fn creating_an_existing_object_is_refused_with_already_exists(t: Target) {
    let api: Api<ConfigMap> = t.api();
    api.create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let s = status_of(
        api.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert!(s.is_already_exists());
    assert_eq!(s.message, "configmaps \"a\" already exists");
    let details = s.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("a", "configmaps")
    );
}
on_both!(creating_an_existing_object_is_refused_with_already_exists);

async fn generate_name_yields_a_fresh_name(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let mut c = cm("", &[]);
    c.metadata.name = None;
    c.metadata.generate_name = Some("gen-".into());
    let made = api.create(&PostParams::default(), &c).await.unwrap();
    assert!(made.name_any().starts_with("gen-") && made.name_any().len() == 9);
}
on_both!(generate_name_yields_a_fresh_name);

async fn creating_an_object_in_a_missing_namespace_is_refused_with_not_found(t: Target) {
    let nowhere = t.ns_named("nowhere");
    let api: Api<Secret> = Api::namespaced(t.client.clone(), &nowhere);
    let mut s = Secret::default();
    s.metadata.name = Some("s".into());
    let st = status_of(api.create(&PostParams::default(), &s).await.unwrap_err());
    assert_eq!((st.code, st.reason.as_str()), (404, "NotFound"));
    assert_eq!(st.message, format!("namespaces \"{nowhere}\" not found"));
}
on_both!(creating_an_object_in_a_missing_namespace_is_refused_with_not_found);

async fn get_opt_and_entry_treat_a_missing_object_as_absent(t: Target) {
    let api: Api<ConfigMap> = t.api();
    assert!(api.get_opt("missing").await.unwrap().is_none());
    let st = status_of(api.get("missing").await.unwrap_err());
    assert!(st.is_not_found());
    assert_eq!(st.message, "configmaps \"missing\" not found");
    let made = api
        .entry("made")
        .await
        .unwrap()
        .or_insert(|| cm("made", &[]))
        .commit(&PostParams::default())
        .await;
    assert!(made.is_ok());
    assert!(api.get_opt("made").await.unwrap().is_some());
}
on_both!(get_opt_and_entry_treat_a_missing_object_as_absent);

async fn lists_filter_by_equality_and_set_based_label_selectors_and_by_field_selectors(t: Target) {
    let api: Api<ConfigMap> = t.api();
    let pp = PostParams::default();
    api.create(&pp, &cm("web", &[("app", "web"), ("env", "prod")]))
        .await
        .unwrap();
    api.create(&pp, &cm("db", &[("app", "db"), ("env", "prod")]))
        .await
        .unwrap();
    api.create(&pp, &cm("dev", &[("app", "web"), ("env", "dev")]))
        .await
        .unwrap();
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items.iter().map(|c| c.name_any()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app=web,env=prod"))
                .await
                .unwrap()
        ),
        vec!["web"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("env in (prod),app notin (db)"))
                .await
                .unwrap()
        ),
        vec!["web"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("!missing,app"))
                .await
                .unwrap()
        )
        .len(),
        3
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=db"))
                .await
                .unwrap()
        ),
        vec!["db"]
    );
    let all: Api<ConfigMap> = Api::all(t.client.clone());
    let in_ns = format!("metadata.namespace={}", t.ns());
    assert_eq!(
        names(
            all.list(&ListParams::default().fields(&in_ns))
                .await
                .unwrap()
        ),
        vec!["db", "dev", "web"]
    );
    let empty = format!("metadata.namespace={}", t.namespace("empty").await);
    assert!(
        all.list(&ListParams::default().fields(&empty))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
on_both!(lists_filter_by_equality_and_set_based_label_selectors_and_by_field_selectors);

async fn lists_page_with_limit_and_continue(t: Target) {
    let api: Api<ConfigMap> = t.api();
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), &[]))
            .await
            .unwrap();
    }
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().unwrap();
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let third = api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(third.metadata.continue_, None, "the last page has no token");
    let names: Vec<String> = [first, second, third]
        .iter()
        .flat_map(|l| l.items.iter().map(|c| c.name_any()))
        .collect();
    assert_eq!(names, vec!["c0", "c1", "c2", "c3", "c4"]);
}
on_both!(lists_page_with_limit_and_continue);

async fn an_update_with_a_stale_resource_version_is_a_conflict(t: Target) {
    let api: Api<Lease> = t.api();
    let mut l = Lease::default();
    l.metadata.name = Some("leader".into());
    let made = api.create(&PostParams::default(), &l).await.unwrap();
    let mut first = made.clone();
    first.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
        holder_identity: Some("a".into()),
        ..Default::default()
    });
    api.replace("leader", &PostParams::default(), &first)
        .await
        .unwrap();
    let mut second = made;
    second.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
        holder_identity: Some("b".into()),
        ..Default::default()
    });
    let s = status_of(
        api.replace("leader", &PostParams::default(), &second)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"leader\": the object has been modified; please apply your changes to the latest version and try again"
    );
}
on_both!(an_update_with_a_stale_resource_version_is_a_conflict);

async fn status_and_spec_are_isolated_by_the_status_subresource(t: Target) {
    let t = t.with_widgets().await;
    let api: Api<Widget> = t.api();
    let mut w = Widget::new("w", WidgetSpec { size: 1 });
    w.status = Some(WidgetStatus { ready: true });
    let made = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(made.status, None, "status is dropped on create");
    let mut with_status = made.clone();
    with_status.status = Some(WidgetStatus { ready: true });
    with_status.spec.size = 99;
    let after = api
        .replace_status("w", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(
        (after.spec.size, after.status.clone().unwrap().ready),
        (1, true)
    );
    assert_eq!(after.metadata.generation, Some(1));
    let mut spec_change = after.clone();
    spec_change.spec.size = 2;
    spec_change.status = Some(WidgetStatus { ready: false });
    let after = api
        .replace("w", &PostParams::default(), &spec_change)
        .await
        .unwrap();
    assert_eq!(
        (after.spec.size, after.status.clone().unwrap().ready),
        (2, true)
    );
    assert_eq!(after.metadata.generation, Some(2));
    let unchanged = api
        .replace("w", &PostParams::default(), &after)
        .await
        .unwrap();
    assert_eq!(
        (unchanged.resource_version(), unchanged.metadata.generation),
        (after.resource_version(), Some(2)),
        "a no-op update keeps the resourceVersion and the generation"
    );
}
on_both!(status_and_spec_are_isolated_by_the_status_subresource);

async fn deleting_an_object_without_finalizers_removes_it(t: Target) {
    let t = t.with_widgets().await;
    let api = t.widgets();
    api.create(&PostParams::default(), &dyn_widget("w", 1))
        .await
        .unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("w").await.unwrap().is_none());
    let s = status_of(api.delete("w", &DeleteParams::default()).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "widgets.example.com \"w\" not found");
}
on_both!(deleting_an_object_without_finalizers_removes_it);
