//! Enterprise networks, end to end: a GitHub Enterprise Server behind a private CA, trusted
//! through a Connection's `spec.caBundle` (ConfigMap or Secret) or the operator's
//! `--extra-ca-bundle`; and every provider call (GitHub over HTTPS, AWS STS over HTTP) through
//! a real forward proxy (proxy.py) named by HTTPS_PROXY / HTTP_PROXY.

mod support;

use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use patchbay::api::{Condition, ConditionStatus, Connection};
use serde_json::json;
use support::cluster::{Cluster, ROOT, TEST_LABEL, apply_as, eventually};
use testkit::envtest::Identity;
use testkit::github::GithubSim;
use testkit::keys::RsaKey;
use testkit::moto::{DEFAULT_KEY, MotoServer};
use testkit::proxy::ProxyServer;
use testkit::tls::TestCa;

/// A GHES simulator behind `ca`, with App 7 installed on `acme` (repository `app`).
async fn ghes(ca: &TestCa) -> (GithubSim, RsaKey) {
    support::github::behind(ca).await
}

/// The githubApp block for the simulator, with the key in Secret `app-key`.
fn github_app(sim: &GithubSim) -> serde_json::Value {
    json!({"serverUrl": sim.ghes_url(), "appId": "7",
        "privateKey": {"name": "app-key", "key": "private-key.pem"},
        "ownerUrl": format!("{}/acme", sim.ghes_url())})
}

/// Waits until Connection `namespace/name` has a Verified condition for its generation that
/// satisfies `check`.
async fn verified(
    client: &Client,
    namespace: &str,
    name: &str,
    check: impl Fn(&Condition) -> bool,
) -> Condition {
    let api: Api<Connection> = Api::namespaced(client.clone(), namespace);
    eventually(
        60,
        &format!("Connection {namespace}/{name} Verified"),
        || {
            let (api, check) = (api.clone(), &check);
            async move {
                let conn = api.get_opt(name).await.ok()??;
                let generation = conn.metadata.generation;
                let status = conn.status?;
                let found = status
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == "Verified")?;
                (found.observed_generation == generation && check(&found)).then_some(found)
            }
        },
    )
    .await
}

fn is(status: ConditionStatus, reason: &'static str) -> impl Fn(&Condition) -> bool {
    move |c| c.status == status && c.reason == reason
}

#[tokio::test]
async fn a_server_behind_a_private_ca_is_trusted_only_by_connections_that_name_its_ca() {
    let cluster = Cluster::start().await;
    cluster.namespace("team-a", Some(ROOT)).await;
    cluster.namespace("other", Some(ROOT)).await;
    let ca = TestCa::new("corporate CA");
    let (sim, key) = ghes(&ca).await;
    for ns in [ROOT, "other"] {
        cluster
            .secret(
                ns,
                "app-key",
                &[("private-key.pem", &key.private_pkcs1_pem())],
            )
            .await;
    }
    let connection = |ns: &str, name: &str, extra: serde_json::Value| {
        let mut spec = json!({"githubApp": github_app(&sim)});
        if let Some(bundle) = extra.get("caBundle") {
            spec["caBundle"] = bundle.clone();
        }
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": name, "namespace": ns}, "spec": spec})
    };

    // Without the CA: a reason of its own that says what to add.
    cluster.apply(connection(ROOT, "ghes", json!({}))).await;
    let refused = verified(&cluster.client, &cluster.ns(ROOT), "ghes", |c| {
        c.status == ConditionStatus::False
    })
    .await;
    assert_eq!(
        refused.reason, "CertificateNotTrusted",
        "{}",
        refused.message
    );
    assert!(
        refused.message.contains("spec.caBundle"),
        "{}",
        refused.message
    );
    assert_eq!(sim.total_calls(), 0, "no request got past the handshake");

    // With the CA in a ConfigMap: verified, and tokens mint and revoke through it.
    let pem = ca.pem().to_string();
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "corp-ca", "namespace": ROOT}, "data": {"ca.crt": pem}}))
        .await;
    let bundle = json!({"caBundle": {"configMap": {"name": "corp-ca", "key": "ca.crt"}}});
    cluster.apply(connection(ROOT, "ghes", bundle)).await;
    verified(
        &cluster.client,
        &cluster.ns(ROOT),
        "ghes",
        is(ConditionStatus::True, "Verified"),
    )
    .await;
    cluster
        .apply(
            json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "build", "namespace": "team-a"},
            "spec": {"connection": "ghes", "github": {"repositories": ["app"]}}}),
        )
        .await;
    cluster
        .token_ready("team-a", "build", |c| c.status == ConditionStatus::True)
        .await;
    let secret = cluster.api::<Secret>("team-a").get("build").await.unwrap();
    let password = String::from_utf8(secret.data.unwrap()["password"].0.clone()).unwrap();
    assert!(sim.is_live(&password));

    // Another namespace's connection to the same server trusts only what it names itself.
    cluster.apply(connection("other", "plain", json!({}))).await;
    let plain = verified(&cluster.client, &cluster.ns("other"), "plain", |c| {
        c.status == ConditionStatus::False
    })
    .await;
    assert_eq!(plain.reason, "CertificateNotTrusted", "{}", plain.message);
    cluster
        .secret("other", "corp-ca", &[("ca.crt", &pem)])
        .await;
    let bundle = json!({"caBundle": {"secret": {"name": "corp-ca", "key": "ca.crt"}}});
    cluster
        .apply(connection("other", "from-secret", bundle))
        .await;
    let ns = cluster.ns("other");
    verified(
        &cluster.client,
        &ns,
        "from-secret",
        is(ConditionStatus::True, "Verified"),
    )
    .await;

    // A bundle that holds no certificate is named as such.
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "broken-ca", "namespace": "other"},
            "data": {"ca.crt": "not a certificate"}}))
        .await;
    let bundle = json!({"caBundle": {"configMap": {"name": "broken-ca", "key": "ca.crt"}}});
    cluster.apply(connection("other", "broken", bundle)).await;
    let broken = verified(&cluster.client, &ns, "broken", |c| {
        c.status == ConditionStatus::False
    })
    .await;
    assert_eq!(broken.reason, "InvalidCaBundle", "{}", broken.message);
    assert!(
        broken.message.contains("spec.caBundle.configMap"),
        "{}",
        broken.message
    );

    // Deleting the token revokes its credential at the server, through the same CA.
    cluster
        .api::<patchbay::api::VcsAuthToken>("team-a")
        .delete("build", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "the token to be revoked", || async {
        (!sim.is_live(&password)).then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test]
async fn provider_calls_go_through_the_proxy_and_trust_the_operator_s_extra_bundle() {
    let Some(moto) = MotoServer::for_test("network") else {
        return;
    };
    let mut proxy = match ProxyServer::start() {
        Ok(proxy) => proxy,
        Err(e) if ProxyServer::binary().is_none() && std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("proxy.py: {e}"),
    };
    let cluster = Cluster::start().await;
    let (id, client) = (cluster.id().to_string(), cluster.client.clone());
    let (root, team) = (cluster.ns(ROOT), cluster.ns("team-a"));
    let Some(kubeconfig) = cluster.server.kubeconfig_path(Identity::Operator) else {
        eprintln!("skipped: the operator identity is impersonated on your own cluster");
        return;
    };
    cluster.namespace("team-a", Some(ROOT)).await;
    // This test runs the operator binary; the harness's in-process controllers stop first.
    cluster.stop().await;

    let ca = TestCa::new("operator-wide CA");
    let (sim, key) = ghes(&ca).await;
    let dir = std::env::temp_dir().join(format!("patchbay-network-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("extra-ca.pem");
    std::fs::write(&bundle, ca.pem()).unwrap();
    let log = dir.join("operator.log");
    let _operator = support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args([
                "run",
                "--root-namespace",
                &root,
                "--http-address",
                "127.0.0.1:0",
            ])
            .args(["--namespace-selector", &format!("{TEST_LABEL}={id}")])
            .args(["--allowed-endpoints", "127.0.0.1"])
            .arg("--extra-ca-bundle")
            .arg(&bundle)
            .env("KUBECONFIG", &kubeconfig)
            .env("HTTPS_PROXY", proxy.url())
            .env("HTTP_PROXY", proxy.url())
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
        Some(log.clone()),
    );
    let apply = |object: serde_json::Value| {
        let client = client.clone();
        async move { apply_as(&client, &object).await.unwrap() }
    };
    apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "app-key", "namespace": root},
        "stringData": {"private-key.pem": key.private_pkcs1_pem()}}))
    .await;
    apply(
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": "ghes", "namespace": root}, "spec": {"githubApp": github_app(&sim)}}),
    )
    .await;
    apply(
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "build", "namespace": team},
        "spec": {"connection": "ghes", "github": {"repositories": ["app"]}}}),
    )
    .await;
    apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "aws-keys", "namespace": root},
        "stringData": {"id": DEFAULT_KEY.0, "secret": DEFAULT_KEY.1}}))
    .await;
    apply(
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": "aws", "namespace": root},
        "spec": {"aws": {"region": "eu-west-1", "stsEndpoint": moto.endpoint(),
            "credentials": {"accessKeys": {"accessKeyId": {"name": "aws-keys", "key": "id"},
                "secretAccessKey": {"name": "aws-keys", "key": "secret"}}}}}}),
    )
    .await;
    apply(
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "deploy", "namespace": root},
        "spec": {"connection": "aws", "aws": {}}}),
    )
    .await;

    // A server outside --allowed-endpoints is refused before any call, the field named.
    let mut elsewhere = github_app(&sim);
    elsewhere["serverUrl"] = json!("https://ghe.elsewhere.example");
    elsewhere["ownerUrl"] = json!("https://ghe.elsewhere.example/acme");
    apply(
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": "elsewhere", "namespace": root}, "spec": {"githubApp": elsewhere}}),
    )
    .await;
    let conns: Api<Connection> = Api::namespaced(client.clone(), &root);
    let refused = eventually(
        60,
        "the connection outside the policy to be refused",
        || {
            let conns = conns.clone();
            async move {
                let status = conns.get_opt("elsewhere").await.ok()??.status?;
                let ready = status.conditions.into_iter().find(|c| c.type_ == "Ready")?;
                (ready.status == ConditionStatus::False).then_some(ready)
            }
        },
    )
    .await;
    assert_eq!(refused.reason, "EndpointNotAllowed", "{}", refused.message);
    assert!(
        refused
            .message
            .starts_with("spec.githubApp.serverUrl: ghe.elsewhere.example")
    );

    // The operator's bundle makes the private CA trusted; both kinds mint, through the proxy.
    verified(
        &client,
        &root,
        "ghes",
        is(ConditionStatus::True, "Verified"),
    )
    .await;
    for (ns, name) in [(&team, "build"), (&root, "deploy")] {
        let tokens: Api<patchbay::api::VcsAuthToken> = Api::namespaced(client.clone(), ns);
        eventually(60, &format!("token {ns}/{name} Ready"), || {
            let tokens = tokens.clone();
            async move {
                let t = tokens.get_opt(name).await.ok()??;
                let status = t.status?;
                let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
                (ready.status == ConditionStatus::True).then_some(())
            }
        })
        .await;
    }
    let ghes_host = sim.ghes_url().trim_start_matches("https://").to_string();
    let moto_host = moto.endpoint().trim_start_matches("http://").to_string();
    let through = proxy.log();
    assert!(
        through.contains(&format!("Connecting to upstream {ghes_host}")),
        "GitHub not proxied:\n{through}"
    );
    assert!(
        through.contains(&format!("POST {moto_host}")),
        "STS not proxied:\n{through}"
    );

    let calls = sim.total_calls();

    // Without the proxy nothing gets through: no call goes around it.
    proxy.stop();
    let asked = json!({"metadata": {"annotations": {"patchbay.dev/verify-requested-at": "after-the-proxy-stopped"}}});
    conns
        .patch("ghes", &PatchParams::default(), &Patch::Merge(&asked))
        .await
        .unwrap();
    eventually(60, "the live check to fail without the proxy", || {
        let conns = conns.clone();
        async move {
            let conn = conns.get_opt("ghes").await.ok()??;
            let status = conn.status?;
            let honoured = status.verify_requested_at.as_deref() == Some("after-the-proxy-stopped");
            let failed = (status.conditions.iter())
                .any(|c| c.type_ == "Verified" && c.status == ConditionStatus::False);
            (honoured && failed).then_some(())
        }
    })
    .await;
    assert_eq!(
        sim.total_calls(),
        calls,
        "no call reached GitHub around the proxy"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("forbidden"), "{text}");
    let _ = conns.get("ghes").await.map(|c| c.name_any());
}
