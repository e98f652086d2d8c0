//! What a mint costs the API server, counted at the API emulator while `patchbay run` (its own
//! process) mints a fleet of tokens applied to it: per token one Secret write, one status write
//! and one finalizer write; no read of an object a watch already holds (tokens, connections),
//! and no read of an output Secret the Secret watch knows is not there yet.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use patchbay::api::{Connection, VcsAuthToken};
use serde_json::json;
use support::fleet::{self, CONNECTION, Operator, REPOS, ROOT};
use testkit::apiserver::EmulatorOptions;
use testkit::github::SimConfig;
use testkit::wait::eventually;

/// The tokens applied, over [`NAMESPACES`] namespaces of the fleet's tree.
const TOKENS: usize = 200;
const NAMESPACES: usize = 20;

/// The writes the operator made to `resource` (every write verb).
fn writes(counters: &testkit::apiserver::Counters, resource: &str) -> u64 {
    ["create", "update", "patch", "apply", "delete"]
        .iter()
        .map(|verb| counters.get(verb, resource))
        .sum()
}

#[tokio::test]
async fn a_fleet_of_first_mints_costs_three_writes_each_and_reads_nothing_a_watch_holds() {
    let (emu, dir, kubeconfig) = fleet::emulated("requests", EmulatorOptions::default())
        .await
        .expect("the emulator starts with the CRDs");
    let client = emu.client();
    let config = SimConfig {
        rate_limit: 1_000_000,
        ..SimConfig::default()
    };
    let (sim, key) = fleet::github(config).await.expect("the simulator starts");
    fleet::seed(&client, &sim, &key, 0, NAMESPACES)
        .await
        .expect("the namespaces, the App key and the Connection are made");
    emu.reset_counters();
    let log = dir.join("operator.log");
    let operator = Operator::start(&kubeconfig, &log, "info", |_| {}).expect("the operator starts");

    // The Connection is checked first; then the tokens are applied to the running operator.
    let connections: Api<Connection> = Api::namespaced(client.clone(), ROOT);
    eventually(60, "the Connection Ready", || {
        let connections = connections.clone();
        async move {
            // Listed, not read: every GET of a Connection counted below is the operator's.
            let listed = connections.list(&ListParams::default()).await.ok();
            let conn = listed.and_then(|l| l.items.into_iter().next());
            let conditions = conn.and_then(|c| c.status).map(|s| s.conditions);
            (conditions.unwrap_or_default().iter())
                .any(|c| c.type_ == "Ready" && c.status == patchbay::api::ConditionStatus::True)
                .then_some(())
        }
    })
    .await;
    fleet::create_all::<VcsAuthToken>(TOKENS, |i| {
        let namespace = fleet::namespace_of(i, NAMESPACES);
        let token = json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": format!("tok-{i}"), "namespace": namespace},
            "spec": {"connection": CONNECTION, "github": {"repositories": [REPOS[i % 4]]}},
        });
        Ok((
            Api::namespaced(client.clone(), &namespace),
            serde_json::from_value(token)?,
        ))
    })
    .await
    .expect("the tokens are applied");
    eventually(120, "every token Ready", || {
        let client = client.clone();
        async move {
            let ready = fleet::count_ready(&client).await;
            ready.is_ok_and(|n| n == TOKENS).then_some(())
        }
    })
    .await;
    // Whatever the last mints still write has landed.
    fleet::settle(&emu, Duration::from_secs(2)).await;
    let c = emu.counters();
    let n = TOKENS as u64;
    let secrets: Api<Secret> = Api::all(client.clone());
    let written = (secrets
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=patchbay")))
    .await
    .expect("the Secrets list")
    .items
    .len();
    let figures = [
        ("mints", sim.mint_count()),
        ("Secret writes", writes(&c, "secrets")),
        (
            "token status writes",
            writes(&c, "vcsauthtokens.patchbay.dev/status"),
        ),
        (
            "token writes (the finalizer)",
            c.get("patch", "vcsauthtokens.patchbay.dev"),
        ),
        (
            "Connection status writes",
            writes(&c, "connections.patchbay.dev/status"),
        ),
        ("GET secrets", c.get("get", "secrets")),
        (
            "GET vcsauthtokens",
            c.get("get", "vcsauthtokens.patchbay.dev"),
        ),
        ("GET connections", c.get("get", "connections.patchbay.dev")),
        ("Events written", writes(&c, "events")),
    ];
    println!("{TOKENS} tokens applied to a running operator:");
    for (what, count) in figures {
        println!(
            "  {what:30} {count:>5}  ({:.2} per token)",
            count as f64 / n as f64
        );
    }
    let figure = |what: &str| figures.iter().find(|(w, _)| *w == what).map_or(0, |f| f.1);
    assert_eq!(written, TOKENS, "one Secret per token");
    assert_eq!(figure("mints"), n, "one mint per token");
    assert_eq!(figure("Secret writes"), n, "one Secret write per mint");
    assert_eq!(
        figure("token status writes"),
        n,
        "one status write per mint"
    );
    assert_eq!(
        figure("token writes (the finalizer)"),
        n,
        "one finalizer write per token"
    );
    assert_eq!(figure("GET vcsauthtokens"), 0, "the token watch holds them");
    assert_eq!(
        figure("GET connections"),
        0,
        "the Connection watch holds them"
    );
    // No read per token: a token's Secret that the watch knows is not there is not read before
    // it is created, and the App key is kept while the Secret watch says it is current. It is
    // read by the Connection's check and, when that read overlapped the watch's first list (and
    // so was not kept), once more by each first mint running at that moment (8 call slots).
    assert!(
        figure("GET secrets") <= 10,
        "GET secrets: {} for {TOKENS} first mints",
        figure("GET secrets")
    );
    operator.stop();
}
