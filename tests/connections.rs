//! End to end: the real Connection controller against a real kube-apiserver (tests/support/cluster.rs).

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams};
use patchbay::api::{ConditionStatus, Connection};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, eventually, reason};
use testkit::keys::RsaKey;

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    {
        let v: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
        v
    }
    .into_iter()
    .filter(|d| !d.is_null())
    .collect()
}

fn example(rel: &str) -> Vec<Value> {
    docs(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(rel),
    )
}

fn is_ready(c: &patchbay::api::Condition) -> bool {
    c.status == ConditionStatus::True
}

/// Applies the example namespaces and every example connection, with a real App key.
async fn apply_examples(cluster: &Cluster) -> Vec<(String, String)> {
    for doc in example("namespaces.yaml") {
        cluster.apply(doc).await;
    }
    let key = RsaKey::generate();
    let mut connections = Vec::new();
    let mut files: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/connections"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    files.sort();
    for file in files {
        for mut doc in docs(&file) {
            let app_keys = ["acme-github-app", "ghe-github-app"];
            if doc["kind"] == "Secret" && app_keys.iter().any(|k| doc["metadata"]["name"] == *k) {
                doc["stringData"]["private-key.pem"] = json!(key.private_pkcs1_pem());
            }
            if doc["kind"] == "Connection" {
                // No test talks to the internet: AWS calls go to a closed local port.
                for (block, field) in [("aws", "stsEndpoint"), ("ecr", "endpoint")] {
                    if let Some(b) = doc["spec"].get_mut(block).and_then(Value::as_object_mut) {
                        b.insert(field.into(), json!("http://127.0.0.1:9"));
                    }
                }
                let m = &doc["metadata"];
                connections.push((
                    m["namespace"].as_str().unwrap().to_string(),
                    m["name"].as_str().unwrap().to_string(),
                ));
            }
            cluster.apply(doc).await;
        }
    }
    connections
}

#[tokio::test]
async fn every_example_connection_becomes_ready_with_its_type() {
    let cluster = Cluster::start().await;
    let connections = apply_examples(&cluster).await;
    assert_eq!(connections.len(), 17, "15 kinds, aws and githubApp twice");
    let mut types = std::collections::BTreeSet::new();
    for (ns, name) in &connections {
        let ready = cluster.connection_ready(ns, name, is_ready).await;
        assert_eq!(ready.reason, "Valid", "{ns}/{name}: {}", ready.message);
        let api: Api<Connection> = cluster.api(ns);
        let status = api.get(name).await.unwrap().status.unwrap();
        types.insert(status.connection_type.unwrap());
    }
    assert_eq!(types.len(), 15);
    cluster.stop().await;
}

#[tokio::test]
async fn server_urls_are_normalised_in_the_ready_message() {
    let cluster = Cluster::start().await;
    let key = RsaKey::generate();
    cluster
        .secret(ROOT, "app", &[("key.pem", key.private_pkcs8_pem())])
        .await;
    cluster.secret(ROOT, "gl", &[("secret", "x")]).await;
    cluster.apply(connection("ghes", json!({"githubApp": {
        "serverUrl": "https://ghe.example.com/", "appId": "7", "privateKey": {"name": "app", "key": "key.pem"},
        "ownerUrl": "https://ghe.example.com/acme",
    }}))).await;
    cluster.apply(connection("gitlab", json!({"gitlab": {
        "serverUrl": "https://git.example.com/gitlab/", "applicationId": "a", "secret": {"name": "gl", "key": "secret"},
    }}))).await;
    let ghes = cluster.connection_ready(ROOT, "ghes", is_ready).await;
    assert_eq!(
        ghes.message,
        "GitHub App 7 at https://ghe.example.com/api/v3, installed on acme"
    );
    let gitlab = cluster.connection_ready(ROOT, "gitlab", is_ready).await;
    assert_eq!(
        gitlab.message,
        "GitLab CE/EE application a at https://git.example.com/gitlab/api/v4"
    );
    cluster.stop().await;
}

fn connection(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": name, "namespace": ROOT},
        "spec": spec,
    })
}

#[tokio::test]
async fn each_kind_specific_check_fails_with_its_own_reason_naming_the_field() {
    let cluster = Cluster::start().await;
    cluster.namespace("platform", Some(ROOT)).await;
    cluster
        .secret(
            ROOT,
            "junk",
            &[(
                "key.pem",
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            )],
        )
        .await;
    let good_key = RsaKey::generate();
    cluster
        .secret(ROOT, "app", &[("key.pem", good_key.private_pkcs8_pem())])
        .await;
    cluster.secret(ROOT, "pat", &[("token", "x")]).await;
    let keys = json!({"accessKeys": {"accessKeyId": {"name": "aws", "key": "id"}, "secretAccessKey": {"name": "aws", "key": "secret"}}});
    cluster
        .secret(
            ROOT,
            "aws",
            &[("id", "AKIDEXAMPLE"), ("secret", "not-a-real-secret")],
        )
        .await;
    let role = |source: &str| json!({"iamRole": {"connection": source, "roleArn": "arn:aws:iam::123456789012:role/r"}});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "missing-secret",
            json!({"google": {"clientId": "c", "clientSecret": {"name": "nope", "key": "s"}}}),
            "SecretNotFound",
            "spec.google.clientSecret",
        ),
        (
            "missing-key",
            json!({"google": {"clientId": "c", "clientSecret": {"name": "pat", "key": "s"}}}),
            "SecretKeyNotFound",
            "spec.google.clientSecret",
        ),
        (
            "bad-key",
            json!({"githubApp": {"appId": "1", "privateKey": {"name": "junk", "key": "key.pem"}}}),
            "InvalidPrivateKey",
            "spec.githubApp.privateKey",
        ),
        (
            "foreign-owner",
            json!({"githubApp": {"appId": "1", "privateKey": {"name": "app", "key": "key.pem"},
            "ownerUrl": "https://gitlab.com/acme"}}),
            "InvalidOwnerUrl",
            "spec.githubApp.ownerUrl",
        ),
        (
            "bad-permission",
            json!({"githubApp": {"appId": "1", "privateKey": {"name": "app", "key": "key.pem"},
            "maxPermissions": {"Contents": "read"}}}),
            "InvalidPermissions",
            "spec.githubApp.maxPermissions",
        ),
        (
            "no-org",
            json!({"azureDevOpsPat": {"serverUrl": "https://dev.azure.com/",
            "personalAccessToken": {"name": "pat", "key": "token"}}}),
            "InvalidServerUrl",
            "spec.azureDevOpsPat.serverUrl",
        ),
        (
            "borrowed-identity",
            json!({"aws": {"region": "eu-west-1", "credentials": {"defaultChain": {}}}}),
            "DefaultChainNotAllowed",
            "spec.aws.credentials.defaultChain",
        ),
        (
            "orphan-role",
            json!({"aws": {"region": "eu-west-1", "credentials": role("nowhere")}}),
            "SourceConnectionNotFound",
            "spec.aws.credentials.iamRole.connection",
        ),
        (
            "loop-a",
            json!({"aws": {"region": "eu-west-1", "credentials": role("loop-b")}}),
            "SourceConnectionCycle",
            "spec.aws.credentials.iamRole.connection",
        ),
        (
            "loop-b",
            json!({"aws": {"region": "eu-west-1", "credentials": role("loop-a")}}),
            "SourceConnectionCycle",
            "spec.aws.credentials.iamRole.connection",
        ),
        (
            "registry",
            json!({"ecr": {"region": "eu-west-1", "credentials": keys.clone()}}),
            "Valid",
            "",
        ),
        (
            "wrong-source",
            json!({"aws": {"region": "eu-west-1", "credentials": role("registry")}}),
            "SourceConnectionKindMismatch",
            "spec.aws.credentials.iamRole.connection",
        ),
    ];
    for (name, spec, _, _) in &cases {
        cluster.apply(connection(name, spec.clone())).await;
    }
    // A source in the root that does not serve sub-projects (aws default), used from platform.
    cluster
        .apply(connection(
            "private-keys",
            json!({"aws": {"region": "eu-west-1", "credentials": keys}}),
        ))
        .await;
    let mut from_platform = connection(
        "hidden-source",
        json!({"aws": {"region": "eu-west-1", "credentials": role("private-keys")}}),
    );
    from_platform["metadata"]["namespace"] = json!("platform");
    cluster.apply(from_platform).await;

    for (name, _, expected, field) in cases {
        let ready = cluster
            .connection_ready(ROOT, name, |c| c.reason == expected)
            .await;
        assert!(
            ready.message.starts_with(field),
            "{name}: {}",
            ready.message
        );
        if expected != "Valid" {
            assert_eq!(ready.status, ConditionStatus::False, "{name}");
        }
    }
    let hidden = cluster
        .connection_ready(
            "platform",
            "hidden-source",
            reason("SourceConnectionNotAvailable"),
        )
        .await;
    assert!(
        hidden.message.contains(&format!(
            "Connection {}/private-keys is not available to namespace {}",
            cluster.ns(ROOT),
            cluster.ns("platform")
        )),
        "{}",
        hidden.message
    );
    cluster.stop().await;
}

#[tokio::test]
async fn the_default_chain_is_ready_when_the_operator_allows_it() {
    let cluster = Cluster::start_with(true).await;
    cluster
        .apply(connection(
            "own",
            json!({"aws": {"region": "eu-west-1", "credentials": {"defaultChain": {}}}}),
        ))
        .await;
    let ready = cluster.connection_ready(ROOT, "own", is_ready).await;
    assert!(
        ready.message.contains("default credential chain"),
        "{}",
        ready.message
    );
    cluster.stop().await;
}

#[tokio::test]
async fn a_missing_secret_that_appears_later_turns_the_connection_ready_without_a_restart() {
    let cluster = Cluster::start().await;
    cluster.apply(connection("slack", json!({"slack": {"clientId": "c",
        "clientSecret": {"name": "slack", "key": "client-secret"}, "botToken": {"name": "slack", "key": "bot-token"}}}))).await;
    cluster
        .connection_ready(ROOT, "slack", reason("SecretNotFound"))
        .await;
    cluster
        .secret(ROOT, "slack", &[("client-secret", "x")])
        .await;
    let missing_key = cluster
        .connection_ready(ROOT, "slack", reason("SecretKeyNotFound"))
        .await;
    assert_eq!(
        missing_key.message,
        "spec.slack.botToken: Secret \"slack\" has no key \"bot-token\""
    );
    cluster
        .secret(
            ROOT,
            "slack",
            &[("client-secret", "x"), ("bot-token", "xoxb-not-real")],
        )
        .await;
    cluster.connection_ready(ROOT, "slack", is_ready).await;
    let api: Api<Connection> = cluster.api(ROOT);
    let status = api.get("slack").await.unwrap().status.unwrap();
    assert!(status.conditions.iter().all(|c| c.type_ != "Stalled"));
    // A live check that cannot reach its server says so; the connection stays Ready (nothing
    // the user wrote is wrong).
    cluster.secret(ROOT, "gitlab", &[("secret", "x")]).await;
    cluster
        .apply(connection(
            "gitlab",
            json!({"gitlab": {"applicationId": "a", "serverUrl": "http://127.0.0.1:9",
        "secret": {"name": "gitlab", "key": "secret"}}}),
        ))
        .await;
    let verified = cluster
        .connection_verified(ROOT, "gitlab", |c| c.reason == "ServerUnreachable")
        .await;
    assert_eq!(verified.status, ConditionStatus::False);
    assert!(
        verified.message.contains("127.0.0.1:9"),
        "{}",
        verified.message
    );
    cluster.connection_ready(ROOT, "gitlab", is_ready).await;
    cluster.stop().await;
}

#[tokio::test]
async fn an_iam_role_connection_shows_a_stable_generated_external_id() {
    let cluster = Cluster::start().await;
    cluster
        .secret(
            ROOT,
            "aws",
            &[("id", "AKIDEXAMPLE"), ("secret", "not-a-real-secret")],
        )
        .await;
    cluster.apply(connection("keys", json!({"aws": {"region": "eu-west-1", "credentials": {"accessKeys": {
        "accessKeyId": {"name": "aws", "key": "id"}, "secretAccessKey": {"name": "aws", "key": "secret"}}}}}))).await;
    cluster
        .apply(connection(
            "role",
            json!({"aws": {"region": "eu-west-1", "credentials": {"iamRole": {
        "connection": "keys", "roleArn": "arn:aws:iam::123456789012:role/r"}}}}),
        ))
        .await;
    cluster.connection_ready(ROOT, "role", is_ready).await;
    let api: Api<Connection> = cluster.api(ROOT);
    let conn = api.get("role").await.unwrap();
    let id = conn.status.unwrap().external_id.unwrap();
    assert_eq!(
        id,
        patchbay::providers::external_id(&conn.metadata.uid.unwrap())
    );
    cluster.stop().await;
}

#[tokio::test]
async fn a_permanently_broken_connection_is_not_retried_in_a_loop() {
    let cluster = Cluster::start().await;
    cluster
        .apply(connection(
            "broken",
            json!({"google": {"clientId": "c", "clientSecret": {"name": "nope", "key": "s"}}}),
        ))
        .await;
    cluster
        .connection_ready(ROOT, "broken", reason("SecretNotFound"))
        .await;
    let key = &format!("Connection {}/broken", cluster.ns(ROOT));
    let before = cluster.reconciles(key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = cluster.reconciles(key) - before;
    assert!(
        during <= 1,
        "{during} reconciles of a broken connection in 3 s"
    );
    // Another connection is not held up by the broken one.
    cluster.secret(ROOT, "g", &[("s", "x")]).await;
    cluster
        .apply(connection(
            "fine",
            json!({"google": {"clientId": "c", "clientSecret": {"name": "g", "key": "s"}}}),
        ))
        .await;
    cluster.connection_ready(ROOT, "fine", is_ready).await;
    cluster.stop().await;
}

#[tokio::test]
async fn ready_transitions_are_published_as_events() {
    let cluster = Cluster::start().await;
    cluster
        .apply(connection(
            "g",
            json!({"google": {"clientId": "c", "clientSecret": {"name": "g", "key": "s"}}}),
        ))
        .await;
    cluster
        .connection_ready(ROOT, "g", reason("SecretNotFound"))
        .await;
    cluster.secret(ROOT, "g", &[("s", "x")]).await;
    cluster.connection_ready(ROOT, "g", is_ready).await;
    let events: Api<Event> = cluster.api(ROOT);
    let reasons = eventually(10, "two events", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            let reasons: Vec<String> = list
                .items
                .iter()
                .filter(|e| e.involved_object.name.as_deref() == Some("g"))
                .filter_map(|e| e.reason.clone())
                .collect();
            (reasons.len() >= 2).then_some(reasons)
        }
    })
    .await;
    assert!(
        reasons.contains(&"SecretNotFound".to_string()) && reasons.contains(&"Valid".to_string()),
        "{reasons:?}"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn secret_values_never_reach_status_or_events() {
    let cluster = Cluster::start().await;
    let apps = apply_examples(&cluster).await;
    for (ns, name) in &apps {
        cluster.connection_ready(ns, name, |_| true).await;
    }
    // Other tests share the server: only this test's namespaces count.
    let prefix = cluster.ns("");
    let mine = |m: &kube::api::ObjectMeta| {
        m.namespace
            .as_deref()
            .is_some_and(|ns| ns.starts_with(&prefix))
    };
    let secrets: Api<Secret> = Api::all(cluster.client.clone());
    let values: Vec<String> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| mine(&s.metadata))
        .flat_map(|s| s.data.unwrap_or_default().into_values())
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .filter(|v| v.len() >= 8)
        .collect();
    assert!(!values.is_empty());
    let conns = Api::<Connection>::all(cluster.client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let conns: Vec<&Connection> = conns.iter().filter(|c| mine(&c.metadata)).collect();
    let conns = serde_json::to_string(&conns).unwrap();
    let events = Api::<Event>::all(cluster.client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let events: Vec<&Event> = events.iter().filter(|e| mine(&e.metadata)).collect();
    assert!(!events.is_empty(), "the connections published events");
    let events = serde_json::to_string(&events).unwrap();
    for value in &values {
        for line in value
            .lines()
            .filter(|l| l.len() >= 8 && !l.starts_with("-----"))
        {
            assert!(
                !conns.contains(line),
                "a secret value appears in a Connection"
            );
            assert!(!events.contains(line), "a secret value appears in an Event");
        }
    }
    cluster.stop().await;
}

#[tokio::test]
async fn a_connection_whose_namespace_joins_the_operators_selection_later_is_checked_then() {
    let cluster = Cluster::start().await;
    // The namespace exists without the label the test's operator selects.
    support::cluster::apply_as(
        &cluster.client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cluster.ns("late")}}),
    )
    .await
    .unwrap();
    cluster.secret("late", "g", &[("s", "x")]).await;
    let mut google = connection(
        "g",
        json!({"google": {"clientId": "c", "clientSecret": {"name": "g", "key": "s"}}}),
    );
    google["metadata"]["namespace"] = json!("late");
    cluster.apply(google).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api: Api<Connection> = cluster.api("late");
    let untouched = api.get("g").await.unwrap();
    assert!(
        untouched.status.is_none(),
        "not served outside the selection"
    );
    // Labelling the namespace brings it into the selection: the connection is checked.
    cluster.namespace("late", None).await;
    cluster.connection_ready("late", "g", is_ready).await;
    cluster.stop().await;
}
