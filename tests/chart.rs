//! The Helm chart, end to end on a real kube-apiserver: `helm install` of `charts/patchbay`, then
//! `patchbay run` started exactly as the chart's Deployment starts it (its arguments and
//! environment) and authenticated as the chart's ServiceAccount with a TokenRequest token. No
//! pods run on this server; the operator processes stand in for them.
//!
//! - GitHub and AWS tokens are minted under exactly the chart's RBAC, by one of two replicas;
//!   killing the leader hands over within the lease duration without a second mint.
//! - Every rule of the chart's ClusterRole and leader-election Role is needed: without any one
//!   of them the GitHub scenario (mint, then delete: revoke and let go) fails.
//! - A tenant bound to `patchbay-tenant` manages tokens in its namespace, cannot write status,
//!   cannot read other namespaces' Secrets, and cannot place namespaces in the tree.
//! - `helm uninstall` keeps the CRDs and the users' Connections.
//! - The chart's admission policy sets the revocation finalizer as a token is created, so a new
//!   token's first mint writes the Secret and the status only.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Client, ResourceExt};
use patchbay::api::{ConditionStatus, Connection, VcsAuthToken};
use serde_json::{Value, json};
use support::chart::{self, NAMESPACE, RELEASE, RELEASE_LOCK};
use support::cluster::{TEST_LABEL, apply_as, eventually};
use testkit::envtest::Identity;
use testkit::github::GithubSim;
use testkit::keys::RsaKey;
use testkit::moto::{DEFAULT_KEY, MotoServer};
use testkit::tls::TestCa;

/// The chart's default lease duration (values.yaml `leaderElection.leaseDuration`).
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// A GitHub App at the simulator (a GHES behind a private CA); and the CA's certificate.
async fn github() -> (GithubSim, RsaKey, String) {
    let ca = TestCa::new("chart test CA");
    let (sim, key) = support::github::behind(&ca).await;
    (sim, key, ca.pem().to_string())
}

/// One scenario's namespaces: `{id}-root` and its child `{id}-team`, labelled for a selector.
struct Tree {
    id: String,
    root: String,
    team: String,
}

impl Tree {
    async fn create(admin: &Client, prefix: &str) -> Self {
        let id = testkit::envtest::unique_id(prefix);
        let (root, team) = (format!("{id}-root"), format!("{id}-team"));
        for (name, parent) in [(&root, None), (&team, Some(&root))] {
            let mut labels = json!({ TEST_LABEL: id });
            if let Some(parent) = parent {
                labels["patchbay.dev/parent"] = json!(parent);
            }
            apply(
                admin,
                json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels}}),
            )
            .await;
        }
        Tree { id, root, team }
    }

    /// The arguments that point an operator at this tree only.
    fn scope(&self) -> Vec<String> {
        vec![
            format!("--root-namespace={}", self.root),
            format!("--namespace-selector={TEST_LABEL}={}", self.id),
        ]
    }

    /// The GitHub connection in the root and token `build` for repository `app` in the team.
    async fn github(&self, admin: &Client, sim: &GithubSim, key: &RsaKey, ca: &str) {
        // The server's CA, trusted through a ConfigMap.
        apply(
            admin,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "corp-ca", "namespace": self.root},
            "data": {"ca.crt": ca}}),
        )
        .await;
        apply(
            admin,
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "app-key", "namespace": self.root},
            "stringData": {"private-key.pem": key.private_pkcs1_pem()}}),
        )
        .await;
        apply(
            admin,
            json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "acme", "namespace": self.root},
            "spec": {"caBundle": {"configMap": {"name": "corp-ca", "key": "ca.crt"}},
                "githubApp": {"serverUrl": sim.ghes_url(), "appId": "7",
                "privateKey": {"name": "app-key", "key": "private-key.pem"},
                "ownerUrl": format!("{}/acme", sim.ghes_url())}}}),
        )
        .await;
        apply(
            admin,
            json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "build", "namespace": self.team},
            "spec": {"connection": "acme", "github": {"repositories": ["app"]}}}),
        )
        .await;
    }

    /// Whether the GitHub scenario has come through: token `build` Ready, its Secret holding a
    /// live token, and a Normal Event on connection `acme` telling the user it is Ready (a
    /// token's routine mint is no Event; only its failures and recoveries are).
    async fn github_done(&self, admin: &Client, sim: &GithubSim) -> bool {
        if !ready(admin, &self.team, "build").await {
            return false;
        }
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), &self.team);
        let Ok(Some(secret)) = secrets.get_opt("build").await else {
            return false;
        };
        let password = secret.data.unwrap_or_default().get("password").cloned();
        let live = password.is_some_and(|p| sim.is_live(&String::from_utf8_lossy(&p.0)));
        live && connection_event(admin, &self.root, "acme").await
    }
}

impl Tree {
    /// Deletes token `build` of the GitHub scenario; the credential its Secret held.
    async fn delete_build(&self, admin: &Client) -> String {
        let secret = Api::<Secret>::namespaced(admin.clone(), &self.team)
            .get("build")
            .await
            .unwrap();
        let password = secret.data.unwrap_or_default().remove("password").unwrap();
        Api::<VcsAuthToken>::namespaced(admin.clone(), &self.team)
            .delete("build", &DeleteParams::default())
            .await
            .unwrap();
        String::from_utf8(password.0).unwrap()
    }

    /// Whether deleted token `build` is gone and `password`, its credential, revoked.
    async fn build_revoked(&self, admin: &Client, sim: &GithubSim, password: &str) -> bool {
        let tokens: Api<VcsAuthToken> = Api::namespaced(admin.clone(), &self.team);
        let gone = matches!(tokens.get_opt("build").await, Ok(None));
        gone && !sim.is_live(password)
    }
}

async fn apply(client: &Client, object: Value) {
    apply_as(client, &object)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", object["metadata"]["name"]));
}

async fn ready(client: &Client, namespace: &str, name: &str) -> bool {
    let tokens: Api<VcsAuthToken> = Api::namespaced(client.clone(), namespace);
    let Ok(Some(token)) = tokens.get_opt(name).await else {
        return false;
    };
    let status = token.status.unwrap_or_default();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    ready.is_some_and(|c| c.status == ConditionStatus::True)
}

/// Whether Connection `name` has a Normal Event (its Ready or Verified transition).
async fn connection_event(client: &Client, namespace: &str, name: &str) -> bool {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let Ok(list) = events.list(&ListParams::default()).await else {
        return false;
    };
    list.items.iter().any(|e| {
        let regarding = e.regarding.as_ref();
        e.type_.as_deref() == Some("Normal")
            && regarding.is_some_and(|r| {
                r.kind.as_deref() == Some("Connection") && r.name.as_deref() == Some(name)
            })
    })
}

fn temp_dir(id: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("patchbay-chart-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The holder of the chart's leader Lease.
async fn lease_holder(admin: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(admin.clone(), NAMESPACE);
    let lease = leases.get_opt(RELEASE).await.ok()??;
    lease.spec?.holder_identity
}

#[tokio::test]
async fn two_replicas_of_the_chart_mint_github_and_aws_tokens_and_hand_over_without_a_second_mint()
{
    let Some(installed) = chart::installed().await else {
        return;
    };
    let Some(moto) = MotoServer::for_test("chart") else {
        return;
    };
    let _release = RELEASE_LOCK.read().await;
    let admin = &installed.admin;
    let tree = Tree::create(admin, "chart").await;
    let dir = temp_dir(&tree.id);
    let (sim, key, ca) = github().await;
    tree.github(admin, &sim, &key, &ca).await;
    // AWS: static keys in the root (moto accepts them), a session for a token beside them.
    apply(
        admin,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "aws-keys", "namespace": tree.root},
        "stringData": {"id": DEFAULT_KEY.0, "secret": DEFAULT_KEY.1}}),
    )
    .await;
    apply(
        admin,
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": "aws", "namespace": tree.root},
        "spec": {"aws": {"region": "eu-west-1", "stsEndpoint": moto.endpoint(),
            "credentials": {"accessKeys": {"accessKeyId": {"name": "aws-keys", "key": "id"},
                "secretAccessKey": {"name": "aws-keys", "key": "secret"}}}}}}),
    )
    .await;
    apply(
        admin,
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "deploy", "namespace": tree.root},
        "spec": {"connection": "aws", "aws": {}}}),
    )
    .await;

    // Two replicas, as the chart's Deployment runs them: with the allocator settings the
    // benchmark measured.
    let kubeconfig = installed.service_account_kubeconfig(RELEASE, &dir).await;
    let (_, env) = installed.container("patchbay-a").await;
    for (name, value) in support::fleet::CHART_MALLOC_ENV {
        let set = env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(set, Some(value), "the chart's Deployment sets {name}");
    }
    let mut replicas = Vec::new();
    for pod in ["patchbay-a", "patchbay-b"] {
        let port = chart::free_port();
        let mut args = tree.scope();
        args.push(format!("--http-address=127.0.0.1:{port}"));
        let log = dir.join(format!("{pod}.log"));
        let process = installed.operator(&kubeconfig, pod, &args, &log).await;
        replicas.push((pod, port, log, Some(process)));
    }
    eventually(90, "the GitHub scenario under the chart's RBAC", || {
        let tree = &tree;
        let sim = &sim;
        async move { tree.github_done(admin, sim).await.then_some(()) }
    })
    .await;
    eventually(60, "the AWS token to be Ready", || {
        let root = tree.root.clone();
        async move { ready(admin, &root, "deploy").await.then_some(()) }
    })
    .await;
    let aws = Api::<Secret>::namespaced(admin.clone(), &tree.root)
        .get("deploy")
        .await
        .unwrap();
    assert!(
        aws.data
            .unwrap_or_default()
            .contains_key("AWS_SESSION_TOKEN")
    );
    assert_eq!(sim.mint_count(), 1, "one replica minted, once");

    // Exactly one leads; both are ready (warm caches); the leader's metrics show its work.
    let holder = lease_holder(admin).await.expect("a leader holds the Lease");
    let leader = replicas
        .iter()
        .position(|r| r.0 == holder)
        .expect("a replica leads");
    let standby = 1 - leader;
    for (i, (pod, port, _, _)) in replicas.iter().enumerate() {
        let (status, _) = chart::get(*port, "/readyz").await.expect("/readyz answers");
        assert_eq!(status, 200, "{pod} is ready");
        let (_, metrics) = chart::get(*port, "/metrics").await.unwrap();
        let leading = if i == leader { 1 } else { 0 };
        assert!(
            metrics.contains(&format!("patchbay_leader {leading}")),
            "{pod}:\n{metrics}"
        );
    }
    let (_, metrics) = chart::get(replicas[leader].1, "/metrics").await.unwrap();
    for family in [
        r#"patchbay_reconciles_total{controller="vcsauthtoken",result="success"}"#,
        r#"patchbay_reconcile_duration_seconds_count{controller="connection"}"#,
        r#"patchbay_provider_calls_total{kind="githubApp",call="mint",result="success"} 1"#,
        r#"patchbay_provider_calls_total{kind="aws",call="mint",result="success"}"#,
        r#"patchbay_provider_calls_total{kind="githubApp",call="verify",result="success"}"#,
        r#"patchbay_provider_call_duration_seconds_count{kind="githubApp",call="mint"} 1"#,
        r#"patchbay_renewal_failures_total{kind="githubApp"} 0"#,
        &format!(
            r#"patchbay_token_expiration_timestamp_seconds{{namespace="{}",name="build"}}"#,
            tree.team
        ),
    ] {
        assert!(metrics.contains(family), "no {family} in:\n{metrics}");
    }
    let (_, standby_metrics) = chart::get(replicas[standby].1, "/metrics").await.unwrap();
    assert!(
        !standby_metrics.contains("patchbay_provider_calls_total{"),
        "the standby called no provider:\n{standby_metrics}"
    );

    // The leader dies without a word; the standby takes the Lease within its duration.
    let killed = Instant::now();
    drop(replicas[leader].3.take());
    let successor = replicas[standby].0;
    eventually(30, "the standby to take the Lease", || async move {
        (lease_holder(admin).await.as_deref() == Some(successor)).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!(
        "takeover after the leader was killed: {} ms",
        takeover.as_millis()
    );
    assert!(
        takeover <= LEASE_DURATION + Duration::from_secs(2),
        "the standby took over after {takeover:?}, beyond the {LEASE_DURATION:?} lease"
    );
    // The new leader adopts what is in place: no second mint. Deleting the token revokes it.
    let port = replicas[standby].1;
    eventually(
        30,
        "the new leader to reconcile the tokens",
        || async move {
            let (_, metrics) = chart::get(port, "/metrics").await?;
            metrics
                .contains(
                    r#"patchbay_reconciles_total{controller="vcsauthtoken",result="success"}"#,
                )
                .then_some(())
        },
    )
    .await;
    assert_eq!(sim.mint_count(), 1, "the new leader minted nothing");
    let secret = Api::<Secret>::namespaced(admin.clone(), &tree.team)
        .get("build")
        .await
        .unwrap();
    let password = String::from_utf8(secret.data.unwrap()["password"].0.clone()).unwrap();
    let tokens: Api<VcsAuthToken> = Api::namespaced(admin.clone(), &tree.team);
    tokens
        .delete("build", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "the token to be gone", || {
        let tokens = tokens.clone();
        async move { tokens.get_opt("build").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(
        !sim.is_live(&password),
        "revoked by the new leader on deletion"
    );
    for (pod, _, log, _) in &replicas {
        let text = log_of(log);
        assert!(
            !text.contains("forbidden"),
            "{pod} was refused something:\n{text}"
        );
    }
}

/// The versions of an object a watch reported, as (event, object).
type Seen<K> = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, K)>>>;

/// Every version of object `name` that a watch of `api` reports from now on, collected in the
/// background while the returned task runs.
async fn versions<K>(api: &Api<K>, name: &str) -> (Seen<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let from = api.list(&ListParams::default()).await.unwrap();
    let from = from.metadata.resource_version.unwrap_or_default();
    let params = WatchParams::default().fields(&format!("metadata.name={name}"));
    let mut stream = api.watch(&params, &from).await.unwrap().boxed();
    let seen = Seen::default();
    let collected = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok(Some(event)) = stream.try_next().await {
            let version = match event {
                WatchEvent::Added(o) => ("added", o),
                WatchEvent::Modified(o) => ("modified", o),
                WatchEvent::Deleted(o) => ("deleted", o),
                _ => continue,
            };
            collected.lock().unwrap().push(version);
        }
    });
    (seen, task)
}

#[tokio::test]
async fn a_new_token_carries_the_revoke_finalizer_from_its_create_and_its_first_mint_writes_only_the_secret_and_the_status()
 {
    let Some(installed) = chart::installed().await else {
        return;
    };
    let _release = RELEASE_LOCK.read().await;
    let admin = &installed.admin;
    let tree = Tree::create(admin, "admit").await;
    let tokens: Api<VcsAuthToken> = Api::namespaced(admin.clone(), &tree.team);
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &tree.team);
    let (sim, key, ca) = github().await;
    tree.github(admin, &sim, &key, &ca).await;
    let dir = temp_dir(&tree.id);
    let kubeconfig = installed.service_account_kubeconfig(RELEASE, &dir).await;
    let mut args = tree.scope();
    args.push(format!("--http-address=127.0.0.1:{}", chart::free_port()));
    let log = dir.join("operator.log");
    let _operator = installed
        .operator(&kubeconfig, "patchbay-a", &args, &log)
        .await;
    let minted = |name: &'static str| {
        let (team, secrets) = (tree.team.clone(), secrets.clone());
        async move {
            let ready = ready(admin, &team, name).await;
            (ready && secrets.get_opt(name).await.ok()?.is_some()).then_some(())
        }
    };
    eventually(90, "token build to be Ready with its Secret", || {
        minted("build")
    })
    .await;
    // The API server loads a new policy a moment after the install: until then a token is
    // created without the finalizer, so the scenario goes on once a dry-run create gets it.
    eventually(30, "the chart's finalizer policy to be loaded", || {
        let tokens = tokens.clone();
        async move {
            let probe: VcsAuthToken = serde_json::from_value(json!({
                "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
                "metadata": {"name": "probe"},
                "spec": {"connection": "acme", "github": {"repositories": ["app"]}}}))
            .unwrap();
            let dry_run = PostParams {
                dry_run: true,
                ..Default::default()
            };
            let made = tokens.create(&dry_run, &probe).await.unwrap();
            (made.finalizers() == ["patchbay.dev/revoke"]).then_some(())
        }
    })
    .await;

    // A new token, applied to the running operator, watched from before its create.
    let (token_versions, token_watch) = versions(&tokens, "fresh").await;
    let (secret_versions, secret_watch) = versions(&secrets, "fresh").await;
    apply(
        admin,
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "fresh", "namespace": tree.team},
        "spec": {"connection": "acme", "github": {"repositories": ["app"]}}}),
    )
    .await;
    eventually(60, "token fresh to be Ready with its Secret", || {
        minted("fresh")
    })
    .await;
    // Anything the operator would still write arrives within a moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    token_watch.abort();
    secret_watch.abort();
    let token_versions = std::mem::take(&mut *token_versions.lock().unwrap());
    let secret_versions = std::mem::take(&mut *secret_versions.lock().unwrap());
    assert_eq!(
        secret_versions.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        ["added"],
        "the Secret is written once"
    );
    assert_eq!(
        token_versions.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        ["added", "modified"],
        "the token is created, then written once by the operator (its status)"
    );
    let (_, written) = &token_versions[1];
    assert_eq!(written.finalizers(), ["patchbay.dev/revoke"]);
    assert!(
        written
            .status
            .as_ref()
            .is_some_and(|s| s.token_id.is_some())
    );
    let operator_writes: Vec<String> = (written.managed_fields().iter())
        .filter(|m| m.manager.as_deref() != Some("test"))
        .map(|m| format!("{:?} {:?} {:?}", m.manager, m.operation, m.subresource))
        .collect();
    assert_eq!(
        operator_writes,
        [r#"Some("patchbay") Some("Apply") Some("status")"#],
        "the operator wrote the token's status only"
    );
    // Deleting the token still revokes its credential.
    let secret = secrets.get("fresh").await.unwrap();
    let password = String::from_utf8(secret.data.unwrap()["password"].0.clone()).unwrap();
    assert!(sim.is_live(&password));
    tokens
        .delete("fresh", &DeleteParams::default())
        .await
        .unwrap();
    eventually(30, "the token to be gone", || {
        let tokens = tokens.clone();
        async move { tokens.get_opt("fresh").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(!sim.is_live(&password), "revoked on deletion");
}

/// The chart's operator rules (ClusterRole) and leader-election rules (Role), as installed.
async fn chart_rules(admin: &Client) -> (Vec<PolicyRule>, Vec<PolicyRule>) {
    let cluster_role = Api::<ClusterRole>::all(admin.clone())
        .get(RELEASE)
        .await
        .unwrap();
    let role = Api::<Role>::namespaced(admin.clone(), NAMESPACE)
        .get(&format!("{RELEASE}-leader-election"))
        .await
        .unwrap();
    (
        cluster_role.rules.unwrap_or_default(),
        role.rules.unwrap_or_default(),
    )
}

fn describe(rule: &PolicyRule) -> String {
    format!(
        "{:?} {:?} {:?}",
        rule.api_groups.clone().unwrap_or_default(),
        rule.resources.clone().unwrap_or_default(),
        rule.verbs
    )
}

/// A ServiceAccount `name` with the given cluster-wide and leader-election rules, the latter
/// for Lease `lease` only (where the chart names its own Lease).
async fn account_with(
    admin: &Client,
    name: &str,
    cluster: &[PolicyRule],
    lease: &[PolicyRule],
    lease_name: &str,
) {
    let rename = |rule: &PolicyRule| {
        let mut rule = rule.clone();
        if rule.resource_names.is_some() {
            rule.resource_names = Some(vec![lease_name.to_string()]);
        }
        rule
    };
    let lease: Vec<PolicyRule> = lease.iter().map(rename).collect();
    let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]);
    let objects = [
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": NAMESPACE}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "rules": cluster}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subject}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": NAMESPACE}, "rules": lease}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": subject}),
    ];
    for object in objects {
        apply(admin, object).await;
    }
}

#[tokio::test]
async fn without_any_one_rule_of_the_chart_s_rbac_the_github_scenario_fails() {
    let Some(installed) = chart::installed().await else {
        return;
    };
    let _release = RELEASE_LOCK.read().await;
    let admin = &installed.admin;
    let (cluster, lease) = chart_rules(admin).await;
    assert!(
        cluster.len() >= 9 && lease.len() == 2,
        "{cluster:?} {lease:?}"
    );
    let (sim, key, ca) = github().await;
    // Variant 0 has every rule (the control: the scenario can pass in this setup); variant
    // i > 0 lacks rule i - 1 of the ClusterRole, then of the Role.
    let mut variants = vec![(String::from("every rule"), cluster.clone(), lease.clone())];
    for i in 0..cluster.len() {
        let mut fewer = cluster.clone();
        let removed = fewer.remove(i);
        variants.push((
            format!("ClusterRole rule {}", describe(&removed)),
            fewer,
            lease.clone(),
        ));
    }
    for i in 0..lease.len() {
        let mut fewer = lease.clone();
        let removed = fewer.remove(i);
        variants.push((
            format!("leader Role rule {}", describe(&removed)),
            cluster.clone(),
            fewer,
        ));
    }
    let mut running = Vec::new();
    for (n, (what, cluster_rules, lease_rules)) in variants.into_iter().enumerate() {
        let tree = Tree::create(admin, &format!("walk{n}")).await;
        let account = format!("{}-sa", tree.id);
        let lease_name = format!("{}-lease", tree.id);
        account_with(admin, &account, &cluster_rules, &lease_rules, &lease_name).await;
        tree.github(admin, &sim, &key, &ca).await;
        let dir = temp_dir(&tree.id);
        let kubeconfig = installed.service_account_kubeconfig(&account, &dir).await;
        let mut args = tree.scope();
        args.push(format!("--leader-election-lease={lease_name}"));
        args.push(format!("--http-address=127.0.0.1:{}", chart::free_port()));
        let log = dir.join("operator.log");
        let process = installed.operator(&kubeconfig, &account, &args, &log).await;
        running.push((what, tree, process, log));
    }
    // The control must come through (the authorizer may take a moment to see new bindings).
    let control = &running[0];
    eventually(
        90,
        "the variant with every rule to pass the scenario",
        || async { control.1.github_done(admin, &sim).await.then_some(()) },
    )
    .await;
    // Every other variant had as long, and more.
    tokio::time::sleep(Duration::from_secs(15)).await;
    // The scenario ends with the token deleted: its credential revoked and the token let go (with
    // the chart's admission policy the finalizer needs no write of the operator's, but letting
    // go of it does).
    let mut passwords = Vec::new();
    for (_, tree, _, _) in &running {
        passwords.push(match tree.github_done(admin, &sim).await {
            true => Some(tree.delete_build(admin).await),
            false => None,
        });
    }
    let control_password = passwords[0].clone().expect("the control minted");
    eventually(
        30,
        "the variant with every rule to revoke and let go of the deleted token",
        || async {
            let done = control
                .1
                .build_revoked(admin, &sim, &control_password)
                .await;
            done.then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut needless = Vec::new();
    for ((what, tree, _, log), password) in running[1..].iter().zip(&passwords[1..]) {
        let Some(password) = password else { continue };
        if tree.build_revoked(admin, &sim, password).await {
            needless.push(format!("{what}\n{}", log_of(log)));
        }
    }
    assert!(
        needless.is_empty(),
        "the scenario passed without:\n{}",
        needless.join("\n")
    );
}

#[tokio::test]
async fn a_tenant_manages_tokens_in_its_namespace_but_cannot_place_namespaces_or_write_status() {
    let Some(installed) = chart::installed().await else {
        return;
    };
    let _release = RELEASE_LOCK.read().await;
    let admin = &installed.admin;
    let tree = Tree::create(admin, "tenant").await;
    let user = testkit::envtest::TENANT_USER;
    // The team's binding of the chart's tenant role, and (as self-service platforms do) the
    // right to create and label namespaces.
    apply(
        admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "patchbay-tenant", "namespace": tree.team},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
            "name": format!("{RELEASE}-tenant")},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}),
    )
    .await;
    let creator = format!("{}-namespace-creator", tree.id);
    apply(
        admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": creator},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"],
            "verbs": ["get", "create", "update", "patch"]}]}),
    )
    .await;
    apply(admin, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": creator},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": creator},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}))
    .await;
    apply(admin, json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "org-key", "namespace": tree.root}, "stringData": {"key": "root-only"}}))
    .await;
    let tenant = installed.server.client(Identity::Tenant).await;

    // Tokens in its namespace: created, read, and their status read but not written.
    let tokens: Api<VcsAuthToken> = Api::namespaced(tenant.clone(), &tree.team);
    let token: VcsAuthToken = serde_json::from_value(json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "build", "namespace": tree.team},
        "spec": {"connection": "acme", "github": {"repositories": ["app"]}}}))
    .unwrap();
    eventually(30, "the tenant's binding to take effect", || {
        let (tokens, token) = (tokens.clone(), token.clone());
        async move { tokens.create(&PostParams::default(), &token).await.ok() }
    })
    .await;
    tokens
        .get_status("build")
        .await
        .expect("the tenant reads its token's status");
    let forged = json!({"status": {"tokenId": "forged", "issuer": {"kind": "githubApp",
        "endpoint": "https://evil.example"}}});
    let e = tokens
        .patch_status("build", &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .expect_err("status is the operator's record");
    assert!(forbidden(&e), "{e}");
    let connections: Api<Connection> = Api::namespaced(tenant.clone(), &tree.team);
    let e = connections
        .patch_status("any", &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .expect_err("connection status too");
    assert!(forbidden(&e), "{e}");
    // Nothing of the root's.
    let e = Api::<Secret>::namespaced(tenant.clone(), &tree.root)
        .get("org-key")
        .await
        .expect_err("the root's Secret is not the tenant's");
    assert!(forbidden(&e), "{e}");
    let e = Api::<VcsAuthToken>::namespaced(tenant.clone(), &tree.root)
        .list(&ListParams::default())
        .await
        .expect_err("nor the root's tokens");
    assert!(forbidden(&e), "{e}");

    // The tree guard: the tenant may create namespaces, but not choose their parent.
    let namespaces: Api<Namespace> = Api::all(tenant.clone());
    let placed = |name: &str, parent: Option<&str>| -> Namespace {
        let mut labels = json!({ TEST_LABEL: tree.id });
        if let Some(parent) = parent {
            labels["patchbay.dev/parent"] = json!(parent);
        }
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    };
    // The API server takes a moment to load a new policy: until it does, a create succeeds, so
    // every attempt uses a new name.
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let e = eventually(30, "the admission policy to refuse a chosen parent", || {
        let n = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sneaky = format!("{}-sneaky-{n}", tree.id);
        let (namespaces, ns) = (namespaces.clone(), placed(&sneaky, Some(&tree.root)));
        async move { namespaces.create(&PostParams::default(), &ns).await.err() }
    })
    .await;
    let message = e.to_string();
    assert!(
        message.contains("patchbay.dev/parent") && message.contains("tree administrators"),
        "{message}"
    );
    let plain = format!("{}-plain", tree.id);
    namespaces
        .create(&PostParams::default(), &placed(&plain, None))
        .await
        .expect("a namespace without a parent is the tenant's to create");
    let label = |value: Value| json!({"metadata": {"labels": {"patchbay.dev/parent": value}}});
    let e = namespaces
        .patch(
            &plain,
            &PatchParams::default(),
            &Patch::Merge(&label(json!(tree.root))),
        )
        .await
        .expect_err("adding a parent later is refused too");
    assert!(e.to_string().contains("patchbay.dev/parent"), "{e}");
    // An administrator places it; the tenant can neither move nor detach it, but may change
    // labels the guard does not cover.
    Api::<Namespace>::all(admin.clone())
        .patch(
            &plain,
            &PatchParams::default(),
            &Patch::Merge(&label(json!(tree.root))),
        )
        .await
        .expect("tree administrators place namespaces");
    for change in [label(json!(tree.team)), label(Value::Null)] {
        let e = namespaces
            .patch(&plain, &PatchParams::default(), &Patch::Merge(&change))
            .await
            .expect_err("moving or detaching is refused");
        assert!(e.to_string().contains("patchbay.dev/parent"), "{e}");
    }
    let other = json!({"metadata": {"labels": {"team.example.com/cost-centre": "42"}}});
    namespaces
        .patch(&plain, &PatchParams::default(), &Patch::Merge(&other))
        .await
        .expect("other labels stay the tenant's");
}

fn forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

#[tokio::test]
async fn helm_uninstall_keeps_the_crds_and_the_users_connections() {
    let Some(installed) = chart::installed().await else {
        return;
    };
    let _release = RELEASE_LOCK.write().await;
    let admin = &installed.admin;
    let tree = Tree::create(admin, "keep").await;
    apply(
        admin,
        json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": "kept", "namespace": tree.root},
        "spec": {"githubApp": {"appId": "7",
            "privateKey": {"name": "app-key", "key": "private-key.pem"}}}}),
    )
    .await;
    let kubeconfig = installed.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        chart::run_helm(
            &kubeconfig,
            &["uninstall", RELEASE, "--namespace", NAMESPACE],
        )
    })
    .await
    .unwrap();
    assert!(
        out.contains("These resources were kept due to the resource policy"),
        "{out}"
    );
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in ["connections.patchbay.dev", "vcsauthtokens.patchbay.dev"] {
        crds.get(crd)
            .await
            .unwrap_or_else(|e| panic!("{crd} was removed: {e}"));
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), NAMESPACE);
    eventually(30, "the release's own objects to be gone", || {
        let accounts = accounts.clone();
        async move {
            accounts
                .get_opt(RELEASE)
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    let kept = Api::<Connection>::namespaced(admin.clone(), &tree.root)
        .get("kept")
        .await;
    assert!(
        kept.is_ok_and(|c| c.name_any() == "kept"),
        "the Connection survived"
    );
    // Installing again adopts the kept CRDs (the other tests of this binary go on with it).
    let kubeconfig = installed.kubeconfig.clone();
    tokio::task::spawn_blocking(move || chart::install(&kubeconfig))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_chart_with_every_option_on_is_accepted_by_the_api_server() {
    let Some(installed) = chart::installed().await else {
        return;
    };
    let id = testkit::envtest::unique_id("allon");
    apply(
        &installed.admin,
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": id, "labels": {TEST_LABEL: id}}}),
    )
    .await;
    let values = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/patchbay/ci/all-on-values.yaml"
    );
    let kubeconfig = installed.kubeconfig.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        chart::run_helm(
            &kubeconfig,
            &[
                "template",
                "allon",
                chart::CHART,
                "--namespace",
                &id,
                "--values",
                values,
                // As `helm install` renders it for this server (so with the finalizer policy).
                "--kube-version",
                "1.36.0",
                "--api-versions",
                "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",
            ],
        )
    })
    .await
    .unwrap();
    // Everything but the ServiceMonitor (prometheus-operator's CRD is not installed here),
    // validated by the server itself without being stored.
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(&rendered).unwrap();
    let mut checked = 0;
    let mut kinds = Vec::new();
    for document in documents.into_iter().filter(|d| !d.is_null()) {
        kinds.push(document["kind"].as_str().unwrap_or_default().to_string());
        if document["kind"] == "ServiceMonitor" {
            continue;
        }
        let what = format!("{} {}", document["kind"], document["metadata"]["name"]);
        let params = PatchParams::apply("chart-test").dry_run().force();
        support::cluster::server_side_apply(&installed.admin, &document, params)
            .await
            .unwrap_or_else(|e| panic!("the server refuses {what}: {e}"));
        checked += 1;
    }
    assert!(checked >= 16, "{checked} objects");
    for kind in ["MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
}

#[test]
fn the_install_manifest_grants_exactly_the_chart_s_cluster_role() {
    let kubeconfig = std::env::temp_dir().join("patchbay-chart-no-cluster.kubeconfig");
    let rendered = chart::run_helm(
        &kubeconfig,
        &[
            "template",
            RELEASE,
            chart::CHART,
            "--namespace",
            NAMESPACE,
            "--kube-version",
            "1.33.0",
            "--show-only",
            "templates/clusterrole.yaml",
        ],
    );
    let rules = |documents: Vec<Value>| -> Value {
        let role = documents
            .into_iter()
            .find(|d| d["kind"] == "ClusterRole")
            .expect("a ClusterRole");
        role["rules"].clone()
    };
    let chart = rules(serde_saphyr::from_str_multiple(&rendered).unwrap());
    let manifest = rules(support::cluster::manifests(support::cluster::OPERATOR_RBAC));
    assert_eq!(
        chart, manifest,
        "examples/install/operator-rbac.yaml (what the other tests and the sandbox grant) and the chart's ClusterRole differ"
    );
}
