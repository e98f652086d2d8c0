//! End to end: VcsAuthTokens resolve their connection up the namespace tree, with the real
//! controllers against a real kube-apiserver (see tests/support/cluster.rs).

mod support;

use std::collections::BTreeMap;

use patchbay::api::{PARENT_LABEL, VcsAuthToken};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, reason};

fn google(namespace: &str, name: &str, extra: Value) -> Value {
    let mut spec = json!({"google": {"clientId": "c", "clientSecret": {"name": "g", "key": "s"}}});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec,
    })
}

fn token(namespace: &str, name: &str, connection: &str) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"connection": connection, "oauth": {"refreshToken": {"name": "grant", "key": "refresh_token"}}},
    })
}

fn found_in(t: &VcsAuthToken) -> Option<String> {
    t.status
        .as_ref()?
        .connection_ref
        .as_ref()
        .map(|r| format!("{}/{}", r.namespace, r.name))
}

/// ci → platform → team-a, with a Secret `g` wherever a connection lives.
async fn three_levels() -> Cluster {
    let cluster = Cluster::start().await;
    cluster.namespace("platform", Some(ROOT)).await;
    cluster.namespace("team-a", Some("platform")).await;
    for ns in [ROOT, "platform", "team-a"] {
        cluster.secret(ns, "g", &[("s", "x")]).await;
    }
    cluster
}

/// Waits until the token resolved (its connection is usable: it got as far as reading its
/// grant, which no test here stores) and returns where, with the namespace as the test named it.
async fn resolved(cluster: &Cluster, ns: &str, name: &str) -> String {
    let t = cluster
        .token_ready(ns, name, reason("SecretNotFound"))
        .await;
    logical(cluster, &found_in(&t).unwrap())
}

/// Waits (up to 30 s) until token `ns/name` resolves to `want` (logical `namespace/name`).
async fn resolves_to(cluster: &Cluster, ns: &str, name: &str, want: &str) {
    let api: kube::Api<VcsAuthToken> = cluster.api(ns);
    testkit::wait::observe(30, &format!("the token resolved to {want}"), || async {
        let t = api.get(name).await.map_err(|e| e.to_string())?;
        let at = found_in(&t).map(|f| logical(cluster, &f));
        (at.as_deref() == Some(want))
            .then_some(())
            .ok_or(format!("{at:?}"))
    })
    .await;
}

/// `text` with the test's real namespace names turned back into the logical ones.
fn logical(cluster: &Cluster, text: &str) -> String {
    text.replace(&cluster.ns(""), "")
}

fn ready_message(t: &VcsAuthToken, cluster: &Cluster) -> String {
    let status = t.status.as_ref().unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    logical(cluster, &ready.message)
}

#[tokio::test]
async fn the_nearest_connection_shadows_the_ones_above() {
    let cluster = three_levels().await;
    cluster.apply(google(ROOT, "google", json!({}))).await;
    cluster.apply(google("platform", "google", json!({}))).await;
    cluster.apply(token("team-a", "t", "google")).await;
    assert_eq!(resolved(&cluster, "team-a", "t").await, "platform/google");
    cluster.apply(google("team-a", "google", json!({}))).await;
    // Where the token resolves, not a message: the message that names the connection is only
    // shown until the new connection has been checked.
    resolves_to(&cluster, "team-a", "t", "team-a/google").await;
    cluster.stop().await;
}

#[tokio::test]
async fn a_root_connection_is_visible_in_every_namespace() {
    let cluster = three_levels().await;
    cluster.namespace("loose", None).await;
    cluster.apply(google(ROOT, "google", json!({}))).await;
    for ns in [ROOT, "platform", "team-a", "loose"] {
        cluster.apply(token(ns, "t", "google")).await;
        assert_eq!(resolved(&cluster, ns, "t").await, "ci/google", "from {ns}");
    }
    cluster.stop().await;
}

#[tokio::test]
async fn a_connection_not_available_for_sub_projects_is_refused_below_its_namespace() {
    let cluster = three_levels().await;
    cluster
        .apply(google(
            "platform",
            "google",
            json!({"availableForSubProjects": false}),
        ))
        .await;
    cluster.apply(token("platform", "own", "google")).await;
    cluster.apply(token("team-a", "child", "google")).await;
    assert_eq!(
        resolved(&cluster, "platform", "own").await,
        "platform/google"
    );
    let child = cluster
        .token_ready("team-a", "child", reason("ConnectionNotAvailable"))
        .await;
    let message = &ready_message(&child, &cluster);
    assert!(
        message.contains("Connection platform/google is not available to namespace team-a: it is not available for sub-projects"),
        "{message}"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn allowed_namespaces_must_select_the_tokens_namespace() {
    let cluster = three_levels().await;
    cluster
        .apply(google(
            ROOT,
            "google",
            json!({"allowedNamespaces": {"matchLabels": {"team": "payments"}}}),
        ))
        .await;
    cluster.apply(token("team-a", "t", "google")).await;
    cluster
        .token_ready("team-a", "t", reason("ConnectionNotAvailable"))
        .await;
    let labels = BTreeMap::from([
        (PARENT_LABEL.to_string(), cluster.ns("platform")),
        ("team".to_string(), "payments".to_string()),
    ]);
    cluster.namespace_with_labels("team-a", labels).await;
    assert_eq!(resolved(&cluster, "team-a", "t").await, "ci/google");
    cluster.stop().await;
}

#[tokio::test]
async fn a_missing_connection_lists_the_namespaces_searched() {
    let cluster = three_levels().await;
    cluster.apply(token("team-a", "t", "nowhere")).await;
    let t = cluster
        .token_ready("team-a", "t", reason("ConnectionNotFound"))
        .await;
    assert_eq!(
        ready_message(&t, &cluster),
        "spec.connection: no Connection nowhere in team-a, platform, ci"
    );
    let status = t.status.unwrap();
    assert!(status.conditions.iter().any(|c| c.type_ == "Stalled"));
    cluster.stop().await;
}

#[tokio::test]
async fn a_cycle_in_the_tree_is_an_invalid_hierarchy_with_the_path() {
    let cluster = three_levels().await;
    cluster.namespace("loop-a", Some("loop-b")).await;
    cluster.namespace("loop-b", Some("loop-a")).await;
    cluster.apply(token("loop-a", "t", "google")).await;
    let t = cluster
        .token_ready("loop-a", "t", reason("InvalidHierarchy"))
        .await;
    let message = ready_message(&t, &cluster);
    assert_eq!(
        message,
        "namespace parents form a cycle: loop-a → loop-b → loop-a"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn a_dangling_parent_is_an_invalid_hierarchy_until_the_parent_exists() {
    let cluster = three_levels().await;
    cluster.apply(google(ROOT, "google", json!({}))).await;
    cluster.namespace("orphan", Some("gone")).await;
    cluster.apply(token("orphan", "t", "google")).await;
    let t = cluster
        .token_ready("orphan", "t", reason("InvalidHierarchy"))
        .await;
    let message = ready_message(&t, &cluster);
    assert!(
        message.contains("names parent gone, which does not exist (path: orphan → gone)"),
        "{message}"
    );
    cluster.namespace("gone", None).await;
    assert_eq!(resolved(&cluster, "orphan", "t").await, "ci/google");
    cluster.stop().await;
}

#[tokio::test]
async fn relabelling_a_namespace_moves_its_tokens_to_another_connection() {
    let cluster = three_levels().await;
    cluster.namespace("other", None).await;
    cluster.secret("other", "g", &[("s", "x")]).await;
    cluster.apply(google("platform", "google", json!({}))).await;
    cluster.apply(google("other", "google", json!({}))).await;
    cluster.apply(token("team-a", "t", "google")).await;
    assert_eq!(resolved(&cluster, "team-a", "t").await, "platform/google");
    cluster.namespace("team-a", Some("other")).await;
    resolves_to(&cluster, "team-a", "t", "other/google").await;
    cluster.stop().await;
}

#[tokio::test]
async fn a_request_that_does_not_fit_the_connection_is_a_kind_mismatch() {
    let cluster = three_levels().await;
    cluster.apply(google(ROOT, "google", json!({}))).await;
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "t", "namespace": "team-a"},
            "spec": {"connection": "google", "github": {"repositories": ["app"]}},
        }))
        .await;
    let t = cluster
        .token_ready("team-a", "t", reason("ConnectionKindMismatch"))
        .await;
    assert_eq!(logical(&cluster, &found_in(&t).unwrap()), "ci/google");
    cluster.stop().await;
}

#[tokio::test]
async fn a_token_waits_for_its_connection_to_become_ready() {
    let cluster = three_levels().await;
    cluster
        .apply(
            google(ROOT, "late", json!({}))
                .to_string()
                .replace("\"g\"", "\"late\"")
                .parse()
                .unwrap(),
        )
        .await;
    cluster.apply(token("team-a", "t", "late")).await;
    // First "has not been checked yet" when the token is faster than its connection, then
    // the connection's own reason.
    cluster
        .token_ready("team-a", "t", |c| {
            c.reason == "ConnectionNotReady" && c.message.contains("Secret \"late\" does not exist")
        })
        .await;
    cluster.secret(ROOT, "late", &[("s", "x")]).await;
    assert_eq!(resolved(&cluster, "team-a", "t").await, "ci/late");
    cluster.stop().await;
}
