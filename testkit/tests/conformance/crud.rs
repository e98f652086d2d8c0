//! Discovery, create/get/list/update/delete, object metadata and Status errors.

use crate::{
    Widget, WidgetSpec, WidgetStatus, dyn_widget, emulator, widget_resource, with_widgets,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::DynamicObject;
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

#[tokio::test]
async fn discovery_lists_the_builtins_and_a_crds_resource_with_its_short_names() {
    let (_emu, client) = with_widgets().await;
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let d = Discovery::new(client).run().await.unwrap();
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

#[tokio::test]
async fn aggregated_discovery_lists_the_builtins_and_the_crds_resources() {
    let (_emu, client) = with_widgets().await;
    let d = Discovery::new(client).run_aggregated().await.unwrap();
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

#[tokio::test]
async fn a_new_crd_is_established_and_its_resource_served() {
    let (_emu, client) = with_widgets().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get("widgets.example.com").await.unwrap();
    let conds = crd.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    let widgets: Api<Widget> = Api::namespaced(client, "default");
    let w = widgets
        .create(
            &PostParams::default(),
            &Widget::new("w", WidgetSpec { size: 1 }),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
}

#[tokio::test]
async fn created_objects_get_uid_creation_timestamp_and_increasing_resource_versions() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
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

#[tokio::test]
async fn creating_an_existing_object_is_refused_with_already_exists() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
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
}

#[tokio::test]
async fn generate_name_yields_a_fresh_name() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
    let mut c = cm("", &[]);
    c.metadata.name = None;
    c.metadata.generate_name = Some("gen-".into());
    let made = api.create(&PostParams::default(), &c).await.unwrap();
    assert!(made.name_any().starts_with("gen-") && made.name_any().len() == 9);
}

#[tokio::test]
async fn creating_an_object_in_a_missing_namespace_is_refused_with_not_found() {
    let emu = emulator().await;
    let api: Api<Secret> = Api::namespaced(emu.client(), "nowhere");
    let mut s = Secret::default();
    s.metadata.name = Some("s".into());
    let st = status_of(api.create(&PostParams::default(), &s).await.unwrap_err());
    assert_eq!(st.code, 404);
    assert_eq!(st.message, "namespaces \"nowhere\" not found");
}

#[tokio::test]
async fn get_opt_and_entry_treat_a_missing_object_as_absent() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
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

#[tokio::test]
async fn lists_filter_by_equality_and_set_based_label_selectors_and_by_field_selectors() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
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
    let all: Api<ConfigMap> = Api::all(api.clone().into_client());
    assert_eq!(
        all.list(&ListParams::default().fields("metadata.namespace=kube-system"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), "default");
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
    let names: Vec<String> = [first, second, third]
        .iter()
        .flat_map(|l| l.items.iter().map(|c| c.name_any()))
        .collect();
    assert_eq!(names, vec!["c0", "c1", "c2", "c3", "c4"]);
}

#[tokio::test]
async fn an_update_with_a_stale_resource_version_is_a_conflict() {
    let emu = emulator().await;
    let api: Api<Lease> = Api::namespaced(emu.client(), "default");
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
}

#[tokio::test]
async fn status_and_spec_are_isolated_by_the_status_subresource() {
    let (_emu, client) = with_widgets().await;
    let api: Api<Widget> = Api::namespaced(client, "default");
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
    assert_eq!((after.spec.size, after.status.unwrap().ready), (2, true));
    assert_eq!(after.metadata.generation, Some(2));
}

#[tokio::test]
async fn deleting_an_object_without_finalizers_removes_it() {
    let (_emu, client) = with_widgets().await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_resource());
    api.create(&PostParams::default(), &dyn_widget("w", 1))
        .await
        .unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("w").await.unwrap().is_none());
    let s = status_of(api.delete("w", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(s.code, 404);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents() {
    let emu = emulator().await;
    let client = emu.client();
    let nss: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("team-a".into());
    let made = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(made.status.unwrap().phase.as_deref(), Some("Active"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    cms.create(&PostParams::default(), &cm("x", &[]))
        .await
        .unwrap();
    nss.delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    assert!(nss.get_opt("team-a").await.unwrap().is_none());
    assert!(cms.get_opt("x").await.unwrap().is_none());
}
