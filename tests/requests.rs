//! What a mint costs the API server, counted at the API emulator while `patchbay run` (its own
//! process) mints a fleet of tokens applied to it: per token one Secret write, one status write
//! and one finalizer write; no read of an object a watch already holds (tokens, connections),
//! and no read of an output Secret the Secret watch knows is not there yet. And what a restart
//! costs: no read of an output Secret the Secret watch reports as the last mint wrote it.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use patchbay::api::{Connection, VcsAuthToken};
use serde_json::json;
use support::fleet::{self, CONNECTION, Operator, REPOS, ROOT};
use testkit::apiserver::{Counters, Emulator, EmulatorOptions};
use testkit::github::{GithubSim, SimConfig};
use testkit::wait::eventually;

/// The tokens applied, over [`NAMESPACES`] namespaces of the fleet's tree.
const TOKENS: usize = 200;
const NAMESPACES: usize = 20;

/// The most reads of the App key's Secret in a run: the Connection's check and, when that read
/// overlapped the Secret watch's first list (and so was not kept), one more by the mints that
/// waited for it.
const KEY_READS: u64 = 2;

/// The writes the operator made to `resource` (every write verb).
fn writes(counters: &Counters, resource: &str) -> u64 {
    ["create", "update", "patch", "apply", "delete"]
        .iter()
        .map(|verb| counters.get(verb, resource))
        .sum()
}

/// A running operator that has minted [`TOKENS`] tokens applied to it, all Ready, and the
/// requests counted since it started.
struct Minted {
    emu: Emulator,
    client: kube::Client,
    sim: GithubSim,
    operator: Operator,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

async fn minted(name: &str) -> Minted {
    let (emu, dir, kubeconfig) = fleet::emulated(name, EmulatorOptions::default())
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
    all_ready(&client).await;
    // Whatever the last mints still write has landed.
    fleet::settle(&emu, Duration::from_secs(2)).await;
    Minted {
        emu,
        client,
        sim,
        operator,
        dir,
        kubeconfig,
    }
}

/// Waits until every token is Ready (listed, never read: the reads counted are the operator's).
async fn all_ready(client: &kube::Client) {
    eventually(120, "every token Ready", || {
        let client = client.clone();
        async move {
            let ready = fleet::count_ready(&client).await;
            ready.is_ok_and(|n| n == TOKENS).then_some(())
        }
    })
    .await;
}

/// The requests counted since the counters were last reset, by what they were for.
fn figures(emu: &Emulator, sim: &GithubSim, mints_before: u64) -> Vec<(&'static str, u64)> {
    let c = emu.counters();
    vec![
        ("mints", sim.mint_count() - mints_before),
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
        // The operator's watches stream their lists; the test never lists these two.
        ("LIST secrets", c.get("list", "secrets")),
        ("LIST namespaces", c.get("list", "namespaces")),
    ]
}

/// Prints `figures` under `title`, each also per token.
fn print_figures(title: &str, figures: &[(&'static str, u64)]) {
    println!("{title}:");
    for (what, count) in figures {
        println!(
            "  {what:30} {count:>5}  ({:.2} per token)",
            *count as f64 / TOKENS as f64
        );
    }
}

/// The figure named `what`.
fn figure(figures: &[(&'static str, u64)], what: &str) -> u64 {
    figures.iter().find(|(w, _)| *w == what).map_or(0, |f| f.1)
}

/// The operator's watches of Secrets and namespaces filled their caches from streamed lists
/// (the emulator streams them, as Kubernetes 1.32 and later do), not from paged ones.
fn assert_lists_streamed(figure: &impl Fn(&str) -> u64) {
    for what in ["LIST secrets", "LIST namespaces"] {
        assert_eq!(figure(what), 0, "{what}: the watch streams its list");
    }
}

#[tokio::test]
async fn a_fleet_of_first_mints_costs_three_writes_each_and_reads_nothing_a_watch_holds() {
    let Minted {
        emu,
        client,
        sim,
        operator,
        ..
    } = minted("requests").await;
    let n = TOKENS as u64;
    let figures = figures(&emu, &sim, 0);
    let secrets: Api<Secret> = Api::all(client.clone());
    let written = (secrets
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=patchbay")))
    .await
    .expect("the Secrets list")
    .items
    .len();
    print_figures(
        &format!("{TOKENS} tokens applied to a running operator"),
        &figures,
    );
    let figure = |what: &str| figure(&figures, what);
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
    assert_lists_streamed(&figure);
    assert_eq!(
        figure("GET connections"),
        0,
        "the Connection watch holds them"
    );
    // No read per token: a token's Secret that the watch knows is not there is not read before
    // it is created, and the App key is read once while all first mints wait for that read.
    assert!(
        figure("GET secrets") <= KEY_READS,
        "GET secrets: {} for {TOKENS} first mints",
        figure("GET secrets")
    );
    operator.stop();
}

#[tokio::test]
async fn a_restarted_operator_reads_and_renews_only_the_output_secrets_changed_while_it_was_down() {
    let Minted {
        emu,
        client,
        sim,
        operator,
        dir,
        kubeconfig,
    } = minted("requests-restart").await;
    operator.stop();
    // While the operator is down, one token's Secret loses its credential and another's is
    // deleted; the other tokens' Secrets stay as the operator wrote them.
    let namespace = |i: usize| fleet::namespace_of(i, NAMESPACES);
    let emptied: Api<Secret> = Api::namespaced(client.clone(), &namespace(0));
    let mut secret = emptied.get("tok-0").await.expect("tok-0's Secret is there");
    secret.data = Some(Default::default());
    (emptied.replace("tok-0", &Default::default(), &secret))
        .await
        .expect("tok-0's Secret is emptied");
    let deleted: Api<Secret> = Api::namespaced(client.clone(), &namespace(1));
    (deleted.delete("tok-1", &Default::default()))
        .await
        .expect("tok-1's Secret is deleted");
    // Down for longer than the shortest time between two mints of a token (10 s), as a
    // restart normally is: the changed tokens are minted on their first look.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mints_before = sim.mint_count();
    emu.reset_counters();

    let log = dir.join("operator-restarted.log");
    let operator = Operator::start(&kubeconfig, &log, "info", |_| {}).expect("the operator starts");
    let looked_at = operator
        .wait_reconciled(TOKENS as u64, Duration::from_secs(120))
        .await;
    assert!(
        looked_at.is_some(),
        "the restarted operator looks at every token"
    );
    eventually(120, "the two changed Secrets minted again", || {
        let sim = &sim;
        async move { (sim.mint_count() - mints_before >= 2).then_some(()) }
    })
    .await;
    all_ready(&client).await;
    fleet::settle(&emu, Duration::from_secs(2)).await;
    let figures = figures(&emu, &sim, mints_before);
    print_figures(
        &format!("{TOKENS} tokens, restart with 2 Secrets changed meanwhile"),
        &figures,
    );
    let figure = |what: &str| figure(&figures, what);
    assert_eq!(
        figure("mints"),
        2,
        "only the two changed Secrets are minted again"
    );
    assert_eq!(figure("Secret writes"), 2, "one Secret write per mint");
    assert_eq!(
        figure("token status writes"),
        2,
        "one status write per mint"
    );
    assert_eq!(
        figure("token writes (the finalizer)"),
        0,
        "finalizers are in place"
    );
    assert_eq!(figure("GET vcsauthtokens"), 0, "the token watch holds them");
    assert_lists_streamed(&figure);
    // The App key (read once while the other reads wait, again when that read overlapped the
    // Secret watch's first list), and each changed Secret: read when its token is looked at,
    // and once more when a second look (the App key's listing wakes every token of the
    // connection) comes before the watch has brought the new Secret.
    assert!(
        figure("GET secrets") <= KEY_READS + 2 * 2,
        "GET secrets: {} for a restart with {TOKENS} tokens",
        figure("GET secrets")
    );
    operator.stop();
}
