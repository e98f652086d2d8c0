//! End to end: how the operator's watches fill their caches, read from kube-apiserver's audit
//! log of the operator's own requests. Where the server streams lists (Kubernetes 1.32 and
//! later), every watch streams its list and nothing is listed by pages; where it refuses to
//! (the WatchList feature off, as on 1.30 and 1.31), each watch is refused once, lists by
//! pages from then on, and tokens are minted all the same.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use patchbay::api::ConditionStatus;
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT};
use support::github::{github_app, install_acme};
use testkit::envtest::{ApiServer, OPERATOR_USER, TestServer, unique_id};
use testkit::github::{GithubSim, SimConfig};

const APP_ID: u64 = 42;

/// The resources the operator watches.
const WATCHED: [&str; 4] = ["secrets", "namespaces", "connections", "vcsauthtokens"];

/// Only the operator's requests, at the Metadata level (no bodies): a watch when its answer
/// starts, every request when it completes.
const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: ["system:serviceaccount:patchbay-system:patchbay"]
  - level: None
"#;

/// A kube-apiserver of this test's own, auditing the operator's requests into the returned
/// file, with `flags` added.
async fn audited_server(flags: &[&str]) -> (TestServer, PathBuf) {
    let dir = std::env::temp_dir().join(unique_id("audit"));
    std::fs::create_dir_all(&dir).expect("the audit folder is made");
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY).expect("the audit policy is written");
    let log = dir.join("audit.log");
    let mut args = vec![
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", log.display()),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let server = tokio::task::spawn_blocking(move || {
        let assets = ApiServer::assets().expect("kube-apiserver and etcd are there");
        ApiServer::start_with_flags(&assets, 0, &args).expect("kube-apiserver starts")
    })
    .await
    .expect("the start does not panic");
    // Kept for the life of the test process, as the shared server is; its processes stop when
    // the process exits.
    (TestServer::ApiServer(Box::leak(Box::new(server))), log)
}

/// One audited request of the operator's.
#[derive(Debug)]
struct Request {
    verb: String,
    resource: String,
    uri: String,
    code: u64,
    stage: String,
}

/// The operator's requests in the audit log at `path`.
fn operator_requests(path: &Path) -> Vec<Request> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let events = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok());
    events
        .filter(|e| e["user"]["username"] == OPERATOR_USER)
        .map(|e| Request {
            verb: e["verb"].as_str().unwrap_or_default().into(),
            resource: e["objectRef"]["resource"]
                .as_str()
                .unwrap_or_default()
                .into(),
            uri: e["requestURI"].as_str().unwrap_or_default().into(),
            code: e["responseStatus"]["code"].as_u64().unwrap_or_default(),
            stage: e["stage"].as_str().unwrap_or_default().into(),
        })
        .collect()
}

/// Per watched resource: (paged lists, streamed watches answered, streamed watches refused).
fn list_strategies(requests: &[Request]) -> BTreeMap<&'static str, (usize, usize, usize)> {
    WATCHED
        .iter()
        .map(|&resource| {
            let of = requests.iter().filter(|r| r.resource == resource);
            // A watch lists in pages (`limit`); the install's probes of the operator's rights
            // (as the operator, before it starts) list without one.
            let lists = (of.clone())
                .filter(|r| r.verb == "list" && r.uri.contains("limit="))
                .count();
            let streamed = of
                .filter(|r| r.verb == "watch" && r.uri.contains("sendInitialEvents=true"))
                .collect::<Vec<_>>();
            // A watch that is answered is logged when its answer starts (and again when it
            // ends); a refused one when it completes.
            let answered = (streamed.iter())
                .filter(|r| r.stage == "ResponseStarted" && r.code < 400)
                .count();
            let refused = (streamed.iter())
                .filter(|r| r.stage == "ResponseComplete" && r.code >= 400)
                .count();
            (resource, (lists, answered, refused))
        })
        .collect()
}

/// The list strategies of the operator's watches on a kube-apiserver of its own started with
/// `flags`, once it has minted a token: App [`APP_ID`] installed on `acme`, its key and a
/// Connection to it in the root, and a token in `team-a` (a child of the root), Ready, its
/// Secret holding a live token.
async fn strategies_minting_on(flags: &[&str]) -> BTreeMap<&'static str, (usize, usize, usize)> {
    let (server, audit) = audited_server(flags).await;
    let cluster = Cluster::start_on(server).await;
    let sim = GithubSim::start(SimConfig::default())
        .await
        .expect("the simulator starts");
    let key = install_acme(&sim, APP_ID);
    cluster.namespace("team-a", Some(ROOT)).await;
    let pem = key.private_pkcs1_pem();
    cluster
        .secret(ROOT, "acme-github-app", &[("private-key.pem", &pem)])
        .await;
    let spec = github_app(&sim.ghes_url(), APP_ID, "acme-github-app");
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "acme-github", "namespace": ROOT}, "spec": spec,
        }))
        .await;
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "build", "namespace": "team-a"},
            "spec": {"connection": "acme-github", "github": {"repositories": ["app"]}},
        }))
        .await;
    cluster
        .token_ready("team-a", "build", |c| c.status == ConditionStatus::True)
        .await;
    let data = cluster.secret_text("team-a", "build").await;
    let token = data.as_ref().and_then(|d| d.get("token"));
    assert!(
        token.is_some_and(|t| sim.is_live(t)),
        "the Secret holds a live token"
    );
    // The Secret watch starts with the controllers, after the caches synced.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cluster.operator_running());
    let strategies = list_strategies(&operator_requests(&audit));
    println!("(paged lists, streamed lists, refused) by resource: {strategies:?}");
    strategies
}

#[tokio::test]
async fn where_the_server_streams_lists_every_watch_streams_its_list_and_nothing_is_paged() {
    for (resource, (lists, streamed, refused)) in strategies_minting_on(&[]).await {
        assert_eq!(lists, 0, "{resource}: no paged list");
        assert_eq!(refused, 0, "{resource}: no streamed list refused");
        assert!(streamed >= 1, "{resource}: its watch streamed its list");
    }
}

#[tokio::test]
async fn where_the_server_refuses_streamed_lists_each_watch_is_refused_once_and_lists_by_pages() {
    let flags = ["--feature-gates=WatchList=false"];
    for (resource, (lists, streamed, refused)) in strategies_minting_on(&flags).await {
        assert_eq!(refused, 1, "{resource}: refused once, then paged for good");
        assert_eq!(streamed, 0, "{resource}: nothing streamed");
        assert!(lists >= 1, "{resource}: listed by pages");
    }
}
