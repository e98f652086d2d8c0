//! End to end on a real kube-apiserver with RBAC: the operator needs no right beyond its install
//! manifest (`examples/install/operator-rbac.yaml`, which the README lists), and a tenant
//! cannot read what is not in its namespaces. The emulator has no RBAC, so these tests skip
//! themselves there.

mod support;

use std::process::{Command, Stdio};

use k8s_openapi::api::authorization::v1::SelfSubjectRulesReview;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use patchbay::api::{ConditionStatus, VcsAuthToken};
use serde_json::json;
use support::cluster::{Cluster, OPERATOR_RBAC, ROOT, TEST_LABEL, eventually, manifests};
use testkit::envtest::{Identity, TestServer};
use testkit::github::{GithubSim, SimConfig};

/// Skips (with a note) when the tests run on the emulator, which enforces no RBAC.
fn real(cluster: &Cluster) -> bool {
    if !cluster.server.is_real() {
        eprintln!("skipped: the emulator enforces no RBAC");
    }
    cluster.server.is_real()
}

fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

#[tokio::test]
async fn the_operator_binary_does_its_whole_job_with_only_the_install_rbac() {
    let cluster = Cluster::start().await;
    if !real(&cluster) {
        return;
    }
    // This test runs the operator as a process of its own; the in-process controllers of the
    // harness stop first so that only the binary serves the test's namespaces.
    let server = TestServer::start().await;
    let id = cluster.id().to_string();
    let client = cluster.client.clone();
    let cluster_ns = |n: &str| cluster.ns(n);
    let (root, team) = (cluster_ns(ROOT), cluster_ns("team-a"));
    let log = std::env::temp_dir().join(format!("patchbay-rbac-{id}.log"));
    cluster.stop().await;

    let sim = GithubSim::start(SimConfig::default()).await.unwrap();
    let key = support::github::install_acme(&sim, 7);

    let Some(kubeconfig) = server.kubeconfig_path(Identity::Operator) else {
        eprintln!(
            "skipped: on your own cluster the operator identity is impersonated, in-process only"
        );
        return;
    };
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
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
        Some(log.clone()),
    );

    let apply = |object: serde_json::Value| {
        let client = client.clone();
        async move {
            support::cluster::apply_as(&client, &object)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", object["metadata"]["name"]));
        }
    };
    apply(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": team, "labels": {TEST_LABEL: id, "patchbay.dev/parent": root}}}))
    .await;
    apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "app-key", "namespace": root},
        "stringData": {"private-key.pem": key.private_pkcs1_pem()}}))
    .await;
    apply(
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": "acme", "namespace": root},
        "spec": {"githubApp": {"serverUrl": sim.ghes_url(), "appId": "7",
            "privateKey": {"name": "app-key", "key": "private-key.pem"},
            "ownerUrl": format!("{}/acme", sim.ghes_url())}}}),
    )
    .await;
    apply(
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "build", "namespace": team},
        "spec": {"connection": "acme", "github": {"repositories": ["app"]}}}),
    )
    .await;

    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let tokens: Api<VcsAuthToken> = Api::namespaced(client.clone(), &team);
    let minted = eventually(60, "the token to be Ready", || {
        let tokens = tokens.clone();
        async move {
            let t = tokens.get_opt("build").await.ok()??;
            let ready = t
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")?;
            (ready.status == ConditionStatus::True).then_some(t)
        }
    })
    .await;
    assert_eq!(minted.status.unwrap().revision, 1, "{}", log_text());
    let secret = Api::<Secret>::namespaced(client.clone(), &team)
        .get("build")
        .await
        .unwrap();
    let password = String::from_utf8(secret.data.unwrap()["password"].0.clone()).unwrap();
    assert!(sim.is_live(&password));

    // Deleting the token runs the finalizer: revoke at GitHub, then let the object go.
    tokens
        .delete("build", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "the token to be gone", || {
        let tokens = tokens.clone();
        async move { tokens.get_opt("build").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(!sim.is_live(&password), "revoked on deletion");
    let log = log_text();
    for denied in ["forbidden", "Forbidden"] {
        assert!(
            !log.contains(denied),
            "the operator was refused something:\n{log}"
        );
    }
}

/// The rules of the install manifest's ClusterRole as (group, resource, verb) triples.
fn install_rights() -> Vec<(String, String, String)> {
    let role = manifests(OPERATOR_RBAC)
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("the install manifest has a ClusterRole");
    let role: ClusterRole = serde_json::from_value(role).unwrap();
    triples(role.rules.unwrap_or_default().into_iter().map(|r| {
        (
            r.api_groups.unwrap_or_default(),
            r.resources.unwrap_or_default(),
            r.verbs,
        )
    }))
}

fn triples(
    rules: impl Iterator<Item = (Vec<String>, Vec<String>, Vec<String>)>,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (groups, resources, verbs) in rules {
        for g in &groups {
            for r in &resources {
                for v in &verbs {
                    out.push((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn the_operator_identity_has_exactly_the_rights_of_its_install_manifest() {
    let cluster = Cluster::start().await;
    if !real(&cluster) {
        return;
    }
    // The API server's own account of what the operator may do in a namespace: the rules of
    // every role bound to it, namespaced and cluster-wide.
    let operator = cluster.server.client(Identity::Operator).await;
    let review: SelfSubjectRulesReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": cluster.ns(ROOT)},
    }))
    .unwrap();
    let answer = Api::<SelfSubjectRulesReview>::all(operator)
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    let status = answer.status.expect("a rules review has a status");
    assert!(!status.incomplete, "{:?}", status.evaluation_error);
    let held = triples(status.resource_rules.into_iter().map(|r| {
        (
            r.api_groups.unwrap_or_default(),
            r.resources.unwrap_or_default(),
            r.verbs,
        )
    }));
    let granted = install_rights();
    // What every authenticated user may do (system:basic-user): ask what it may do.
    let everyone = [
        ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
        ("authorization.k8s.io", "selfsubjectrulesreviews", "create"),
        ("authentication.k8s.io", "selfsubjectreviews", "create"),
    ];
    for (g, r, v) in &held {
        let known = granted.contains(&(g.clone(), r.clone(), v.clone()))
            || everyone.contains(&(g.as_str(), r.as_str(), v.as_str()));
        assert!(
            known,
            "the operator may {v} {g}/{r}, which the install manifest does not grant"
        );
    }
    for right in &granted {
        assert!(held.contains(right), "the binding does not give {right:?}");
    }
    cluster.stop().await;
}

#[tokio::test]
async fn a_tenant_reads_secrets_in_its_namespace_and_nowhere_else() {
    let cluster = Cluster::start().await;
    if !real(&cluster) {
        return;
    }
    cluster.namespace("team-a", Some(ROOT)).await;
    cluster
        .secret(ROOT, "org-key", &[("key", "root-only")])
        .await;
    cluster
        .secret("team-a", "mine", &[("key", "team-a's")])
        .await;
    // The tenant manages Secrets, Connections and tokens in team-a. (Not the built-in `admin`
    // role: its rules are aggregated by kube-controller-manager, which a bare API server lacks.)
    cluster
        .apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "tenant", "namespace": "team-a"},
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]},
                {"apiGroups": ["patchbay.dev"], "resources": ["connections", "vcsauthtokens"], "verbs": ["*"]},
            ],
        }))
        .await;
    cluster
        .apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "tenant", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": testkit::envtest::TENANT_USER}],
        }))
        .await;
    let tenant = cluster.server.client(Identity::Tenant).await;
    let own: Api<Secret> = Api::namespaced(tenant.clone(), &cluster.ns("team-a"));
    // RBAC caches may take a moment to see the new binding.
    eventually(10, "the tenant to read its own Secret", || {
        let own = own.clone();
        async move { own.get("mine").await.ok() }
    })
    .await;
    let root: Api<Secret> = Api::namespaced(tenant.clone(), &cluster.ns(ROOT));
    let e = root
        .get("org-key")
        .await
        .expect_err("the root's Secret is not the tenant's");
    assert!(is_forbidden(&e), "{e}");
    let e = Api::<Secret>::all(tenant)
        .list(&ListParams::default())
        .await
        .expect_err("no cluster-wide Secret list");
    assert!(is_forbidden(&e), "{e}");
    cluster.stop().await;
}

#[test]
fn the_readme_lists_exactly_the_rules_of_the_operator_cluster_role() {
    let role = manifests(OPERATOR_RBAC)
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("the install manifest has a ClusterRole");
    let role: ClusterRole = serde_json::from_value(role).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut expected = Vec::new();
    for rule in role.rules.unwrap_or_default() {
        for resource in rule.resources.unwrap_or_default() {
            let group = rule.api_groups.as_deref().unwrap_or_default().join(",");
            let group = if group.is_empty() {
                "core".into()
            } else {
                group
            };
            expected.push(format!(
                "| {group} | `{resource}` | {} |",
                rule.verbs.join(", ")
            ));
        }
    }
    // The rights table: the rows between its header and the next blank line.
    let table: Vec<String> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| API group | resource | verbs | why |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.rsplitn(3, '|').nth(2).unwrap_or_default().to_string() + "|")
        .collect();
    assert_eq!(
        table, expected,
        "README.md's rights table and {OPERATOR_RBAC} differ"
    );
}
