//! End to end: GitHub App installation tokens minted into Secrets by the real controllers,
//! against a real kube-apiserver (tests/support/cluster.rs) and the GitHub simulator.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use patchbay::api::{ConditionStatus, Connection, VcsAuthToken};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, eventually, reason};
use support::github::github_app;
use testkit::github::{
    AccountType, AppSpec, Fault, GithubSim, InstallationSpec, Role, SimConfig, route,
};
use testkit::keys::RsaKey;

const APP_ID: u64 = 42;

struct World {
    cluster: Cluster,
    sim: GithubSim,
}

fn token(name: &str, github: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"connection": "acme-github", "github": github},
    })
}

/// ci → platform → team-a; a GitHub App installed on `acme` (repos app, lib, other); the
/// connection in ci on the simulator's GHES address.
async fn world(lifetime: Duration) -> World {
    let sim = GithubSim::start(SimConfig {
        token_lifetime: lifetime,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let key = RsaKey::generate();
    sim.add_app(AppSpec::new(APP_ID, "acme-ci", &key));
    sim.add_owner("acme", AccountType::Organization);
    for repo in ["app", "lib", "other"] {
        sim.add_repo("acme", repo);
    }
    sim.add_installation(
        InstallationSpec::new(APP_ID, "acme")
            .permissions([("contents", "write"), ("pull_requests", "write")]),
    );
    let cluster = Cluster::start().await;
    cluster.namespace("platform", Some(ROOT)).await;
    cluster.namespace("team-a", Some("platform")).await;
    cluster
        .secret(
            ROOT,
            "acme-github-app",
            &[("private-key.pem", &key.private_pkcs1_pem())],
        )
        .await;
    let mut spec = github_app(&sim.ghes_url(), APP_ID, "acme-github-app");
    spec["githubApp"]["maxPermissions"] =
        json!({"contents": "write", "pull_requests": "read", "metadata": "read"});
    spec["githubApp"]["allowedRepositories"] = json!(["app", "lib*"]);
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "acme-github", "namespace": ROOT}, "spec": spec,
        }))
        .await;
    World { cluster, sim }
}

/// `token` with `spec.renewBefore: 8s`.
fn renewing_8s_before_expiry(mut token: Value) -> Value {
    token["spec"]["renewBefore"] = json!("8s");
    token
}

fn is_ready(c: &patchbay::api::Condition) -> bool {
    c.status == ConditionStatus::True
}

async fn secret(w: &World, name: &str) -> std::collections::BTreeMap<String, String> {
    w.cluster
        .secret_text("team-a", name)
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn a_child_namespace_gets_a_scoped_token_from_a_parent_connection() {
    let w = world(Duration::from_secs(3600)).await;
    w.cluster
        .apply(token(
            "build",
            json!({"repositories": ["app", "lib"], "permissions": {"contents": "read"}}),
        ))
        .await;
    let t = w.cluster.token_ready("team-a", "build", is_ready).await;
    let status = t.status.unwrap();
    assert_eq!(status.revision, 1);
    assert_eq!(status.repositories, ["app", "lib"]);
    assert_eq!(status.permissions.get("contents").as_deref(), Some("read"));
    assert_eq!(status.connection_ref.unwrap().namespace, w.cluster.ns(ROOT));
    assert!(status.token_id.as_deref().unwrap().starts_with("sha256:"));
    assert!(status.expires_at.is_some() && status.renew_at.is_some());

    let api: Api<Secret> = w.cluster.api("team-a");
    let s = api.get("build").await.unwrap();
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let data = secret(&w, "build").await;
    assert_eq!(data["username"], "x-access-token");
    assert_eq!(data["password"], data["token"]);
    assert!(w.sim.is_live(&data["token"]));
    let info = w.sim.token(&data["token"]).unwrap();
    assert_eq!(
        info.repositories,
        Some(vec!["app".to_string(), "lib".to_string()])
    );
    assert_eq!(w.sim.mint_count(), 1);
    // The GHES API prefix was used: the GHES port serves nothing else.
    assert_eq!(w.sim.calls(route::CREATE_TOKEN), 1);
    assert!(
        !serde_json::to_string(&t.metadata)
            .unwrap()
            .contains(&data["token"])
    );
}

#[tokio::test]
async fn repositories_and_permissions_beyond_the_connection_are_refused_before_github_is_called() {
    let w = world(Duration::from_secs(3600)).await;
    w.cluster
        .apply(token("outside", json!({"repositories": ["app", "other"]})))
        .await;
    w.cluster
        .apply(token(
            "too-much",
            json!({"repositories": ["app"], "permissions": {"contents": "admin"}}),
        ))
        .await;
    let outside = w
        .cluster
        .token_ready("team-a", "outside", reason("RepositoryNotAllowed"))
        .await;
    let message = ready_message(&outside);
    assert!(
        message.contains("other") && !message.contains("app,"),
        "{message}"
    );
    let too_much = w
        .cluster
        .token_ready("team-a", "too-much", reason("PermissionNotAllowed"))
        .await;
    assert!(
        ready_message(&too_much).contains("contents"),
        "{}",
        ready_message(&too_much)
    );
    // Only the connection's live check talked to GitHub; no token was asked for.
    assert_eq!(w.sim.calls(route::CREATE_TOKEN), 0);
}

/// The token's Ready condition as the API server holds it now.
async fn ready_condition(w: &World, name: &str) -> Option<patchbay::api::Condition> {
    let t = w
        .cluster
        .api::<VcsAuthToken>("team-a")
        .get(name)
        .await
        .ok()?;
    t.status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
}

fn ready_message(t: &VcsAuthToken) -> String {
    t.status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message
        .clone()
}

#[tokio::test]
async fn a_user_token_lowers_permissions_to_the_least_the_user_holds() {
    let w = world(Duration::from_secs(3600)).await;
    w.sim.add_user("pat-of-dev", "dev");
    w.sim.grant("pat-of-dev", "acme", "app", Role::Write);
    w.sim.grant("pat-of-dev", "acme", "lib", Role::Read);
    w.cluster
        .secret("team-a", "dev-pat", &[("token", "pat-of-dev")])
        .await;
    w.cluster
        .apply(token(
            "as-dev",
            json!({
                "repositories": ["app", "lib"], "permissions": {"contents": "write"},
                "userToken": {"name": "dev-pat", "key": "token"},
            }),
        ))
        .await;
    let t = w.cluster.token_ready("team-a", "as-dev", is_ready).await;
    let status = t.status.unwrap();
    assert_eq!(status.permissions.get("contents").as_deref(), Some("read"));
    assert_eq!(
        serde_json::to_value(status.personal_access_token_source).unwrap(),
        "UserProvided"
    );
}

#[tokio::test]
async fn a_user_without_access_to_a_repository_gets_no_token() {
    let w = world(Duration::from_secs(3600)).await;
    w.sim.add_user("pat-of-guest", "guest");
    w.sim.grant("pat-of-guest", "acme", "app", Role::Read);
    w.cluster
        .secret("team-a", "guest-pat", &[("token", "pat-of-guest")])
        .await;
    w.cluster
        .apply(token("as-guest", json!({"repositories": ["app", "lib"], "userToken": {"name": "guest-pat", "key": "token"}})))
        .await;
    let t = w
        .cluster
        .token_ready("team-a", "as-guest", reason("UserLacksAccess"))
        .await;
    assert!(ready_message(&t).contains("lib"), "{}", ready_message(&t));
    assert_eq!(w.sim.mint_count(), 0);
}

#[tokio::test]
async fn a_restarted_operator_makes_no_provider_call_while_tokens_are_valid() {
    let mut w = world(Duration::from_secs(3600)).await;
    w.cluster
        .apply(token("build", json!({"repositories": ["app"]})))
        .await;
    w.cluster.token_ready("team-a", "build", is_ready).await;
    let calls = w.sim.total_calls();
    w.cluster.restart_controllers().await;
    // The restarted controllers have reconciled the token at least once.
    eventually(15, "a reconcile after the restart", || {
        let n = w
            .cluster
            .reconciles(&format!("VcsAuthToken {}/build", w.cluster.ns("team-a")));
        async move { (n >= 1).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.sim.total_calls(), calls, "provider calls after a restart");
    assert_eq!(w.sim.mint_count(), 1);
}

#[tokio::test]
async fn a_deleted_secret_is_recreated_with_a_new_token() {
    let (w, old) = minted_build_token().await;
    w.cluster.delete::<Secret>("team-a", "build").await;
    let new = eventually(15, "the Secret to come back", || async {
        let data = secret(&w, "build").await;
        data.get("token").filter(|t| **t != old).cloned()
    })
    .await;
    assert!(w.sim.is_live(&new));
    assert_eq!(w.sim.mint_count(), 2);
}

#[tokio::test]
async fn a_secret_patchbay_does_not_own_is_left_untouched() {
    let w = world(Duration::from_secs(3600)).await;
    w.cluster
        .secret("team-a", "build", &[("token", "someone-elses")])
        .await;
    w.cluster
        .apply(token("build", json!({"repositories": ["app"]})))
        .await;
    let t = w
        .cluster
        .token_ready("team-a", "build", reason("SecretConflict"))
        .await;
    assert!(
        ready_message(&t).contains(&format!("{}/build", w.cluster.ns("team-a"))),
        "{}",
        ready_message(&t)
    );
    assert_eq!(secret(&w, "build").await["token"], "someone-elses");
    assert_eq!(w.sim.mint_count(), 0);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_until_a_token_is_minted() {
    let w = world(Duration::from_secs(3600)).await;
    w.sim
        .fail_next_on(route::CREATE_TOKEN, 2, Fault::ServerError(502));
    let started = std::time::Instant::now();
    w.cluster
        .apply(token("build", json!({"repositories": ["app"]})))
        .await;
    w.cluster
        .token_ready("team-a", "build", reason("GithubError"))
        .await;
    w.cluster.token_ready("team-a", "build", is_ready).await;
    let waited = started.elapsed();
    assert_eq!(w.sim.calls(route::CREATE_TOKEN), 3);
    // 5 s, then 10 s of backoff (with at most 10 % jitter each).
    assert!(waited >= Duration::from_secs(15), "{waited:?}");
    assert_eq!(w.sim.mint_count(), 1);
}

#[tokio::test]
async fn a_failed_renewal_keeps_the_still_valid_token_and_honours_retry_after() {
    let (w, old) = minted_build_token().await;
    w.sim.fail_next_on(
        route::CREATE_TOKEN,
        1,
        Fault::SecondaryRateLimited {
            status: 429,
            retry_after_secs: 8,
        },
    );
    let api: Api<VcsAuthToken> = w.cluster.api("team-a");
    let ask = json!({"metadata": {"annotations": {"patchbay.dev/renew-requested-at": "2026-11-23T12:00:00Z"}}});
    api.patch("build", &PatchParams::default(), &Patch::Merge(&ask))
        .await
        .unwrap();
    let failing = w
        .cluster
        .token_ready("team-a", "build", reason("RenewalFailing"))
        .await;
    assert!(
        ready_message(&failing).contains("stays valid"),
        "{}",
        ready_message(&failing)
    );
    assert_eq!(
        failing
            .status
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .status,
        ConditionStatus::True
    );
    assert_eq!(secret(&w, "build").await["token"], old);
    assert!(w.sim.is_live(&old));
    let asked = std::time::Instant::now();
    w.cluster
        .token_ready("team-a", "build", |c| c.reason == "TokenValid")
        .await;
    assert!(
        asked.elapsed() >= Duration::from_secs(6),
        "retried after {:?}",
        asked.elapsed()
    );
    let new = secret(&w, "build").await["token"].clone();
    assert_ne!(new, old);
    assert!(!w.sim.is_live(&old), "the superseded token is revoked");
    assert_eq!(w.sim.calls(route::CREATE_TOKEN), 3);
}

#[tokio::test]
async fn deleting_a_token_revokes_its_credential() {
    let w = world(Duration::from_secs(3600)).await;
    w.cluster
        .apply(token("build", json!({"repositories": ["app"]})))
        .await;
    w.cluster.token_ready("team-a", "build", is_ready).await;
    let live = secret(&w, "build").await["token"].clone();
    let tokens: Api<VcsAuthToken> = w.cluster.api("team-a");
    let issuer = tokens
        .get("build")
        .await
        .unwrap()
        .status
        .unwrap()
        .issuer
        .unwrap();
    assert_eq!(
        (issuer.kind.as_str(), issuer.endpoint),
        ("githubApp", Some(w.sim.ghes_api_url())),
        "the status records where the token was minted, and so where it is revoked"
    );
    // The Secret is the tenant's to edit: what it says about where to revoke is not asked.
    let secrets: Api<Secret> = w.cluster.api("team-a");
    let tampered =
        json!({"metadata": {"annotations": {"patchbay.dev/github-api": "http://127.0.0.1:9"}}});
    secrets
        .patch("build", &PatchParams::default(), &Patch::Merge(&tampered))
        .await
        .unwrap();
    let api: Api<VcsAuthToken> = w.cluster.api("team-a");
    api.delete("build", &DeleteParams::default()).await.unwrap();
    eventually(15, "the token to be gone", || {
        let api = api.clone();
        async move { api.get_opt("build").await.ok().filter(Option::is_none) }
    })
    .await;
    assert!(!w.sim.is_live(&live));
    assert_eq!(w.sim.revoke_count(), 1);
    if w.cluster.server.is_real() {
        // A bare kube-apiserver runs no garbage collector (kube-controller-manager does): the
        // Secret carries the controller reference that makes a cluster's collector delete it.
        let s = w
            .cluster
            .api::<Secret>("team-a")
            .get("build")
            .await
            .unwrap();
        let owner = &s.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("VcsAuthToken", "build")
        );
        assert_eq!(owner.controller, Some(true));
    } else {
        eventually(15, "the owned Secret to be collected", || async {
            w.cluster
                .secret_text("team-a", "build")
                .await
                .is_none()
                .then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn short_lived_tokens_are_renewed_once_per_period_and_the_old_one_revoked() {
    let w = world(Duration::from_secs(70)).await;
    w.cluster
        .apply(renewing_8s_before_expiry(token(
            "build",
            json!({"repositories": ["app"]}),
        )))
        .await;
    let first = w.cluster.token_ready("team-a", "build", is_ready).await;
    let old = secret(&w, "build").await["token"].clone();
    let renew_at = first.status.unwrap().renew_at.unwrap().0;
    let issued = std::time::Instant::now();
    let new = eventually(90, "the renewed token", || async {
        let data = secret(&w, "build").await;
        data.get("token").filter(|t| **t != old).cloned()
    })
    .await;
    let renewed_after = issued.elapsed();
    assert!(
        renewed_after >= Duration::from_secs(55),
        "renewed after {renewed_after:?} (renewAt {renew_at})"
    );
    assert!(w.sim.is_live(&new));
    eventually(10, "the old token to be revoked", || async {
        (!w.sim.is_live(&old)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.sim.mint_count(), 2, "one mint per period");
}

async fn verified(w: &World, name: &str, expected: &'static str) -> patchbay::api::Condition {
    let api: Api<patchbay::api::Connection> = w.cluster.api(ROOT);
    eventually(
        30,
        &format!("Connection {name} Verified={expected}"),
        || {
            let api = api.clone();
            async move {
                let c = api.get_opt(name).await.ok()??;
                c.status?
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == "Verified" && c.reason == expected)
            }
        },
    )
    .await
}

fn github_connection(
    w: &World,
    name: &str,
    app_id: &str,
    server: &str,
    owner: &str,
    key_secret: &str,
) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": name, "namespace": ROOT},
        "spec": {"githubApp": {
            "serverUrl": server, "appId": app_id,
            "privateKey": {"name": key_secret, "key": "private-key.pem"},
            "ownerUrl": format!("{server}/{owner}"),
        }},
    })
    .to_string()
    .replace("SIM", &w.sim.ghes_url())
    .parse()
    .unwrap()
}

#[tokio::test]
async fn the_live_check_tells_a_bad_key_an_unknown_app_a_missing_installation_and_an_unreachable_server_apart()
 {
    let w = world(Duration::from_secs(3600)).await;
    let good = verified(&w, "acme-github", "Verified").await;
    assert!(
        good.message.starts_with("app acme-ci, installation "),
        "{}",
        good.message
    );
    assert!(good.message.contains(" on acme"), "{}", good.message);

    let other = RsaKey::generate();
    w.cluster
        .secret(
            ROOT,
            "other-key",
            &[("private-key.pem", other.private_pkcs8_pem())],
        )
        .await;
    w.cluster
        .apply(github_connection(
            &w,
            "wrong-key",
            "42",
            "SIM",
            "acme",
            "other-key",
        ))
        .await;
    w.cluster
        .apply(github_connection(
            &w,
            "unknown-app",
            "999",
            "SIM",
            "acme",
            "acme-github-app",
        ))
        .await;
    w.cluster
        .apply(github_connection(
            &w,
            "not-installed",
            "42",
            "SIM",
            "nobody",
            "acme-github-app",
        ))
        .await;
    w.cluster
        .apply(github_connection(
            &w,
            "down",
            "42",
            "http://127.0.0.1:9",
            "acme",
            "acme-github-app",
        ))
        .await;
    for (name, reason) in [
        ("wrong-key", "KeyRejected"),
        ("unknown-app", "AppNotFound"),
        ("not-installed", "InstallationNotFound"),
        ("down", "Unreachable"),
    ] {
        let v = verified(&w, name, reason).await;
        assert_eq!(v.status, ConditionStatus::False, "{name}");
        // The live check does not gate Ready.
        w.cluster.connection_ready(ROOT, name, is_ready).await;
    }
}

#[tokio::test]
async fn the_verify_annotation_runs_the_live_check_again() {
    let w = world(Duration::from_secs(3600)).await;
    verified(&w, "acme-github", "Verified").await;
    let before = w.sim.calls(route::GET_APP);
    let api: Api<patchbay::api::Connection> = w.cluster.api(ROOT);
    let ask = json!({"metadata": {"annotations": {"patchbay.dev/verify-requested-at": "2026-11-23T12:00:00Z"}}});
    api.patch("acme-github", &PatchParams::default(), &Patch::Merge(&ask))
        .await
        .unwrap();
    eventually(15, "a second GET /app", || async {
        (w.sim.calls(route::GET_APP) > before).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        w.sim.calls(route::GET_APP),
        before + 1,
        "one check per request"
    );
}

#[tokio::test]
async fn a_token_that_lapses_while_github_is_down_becomes_expired_and_recovers() {
    let w = world(Duration::from_secs(70)).await;
    w.cluster
        .apply(renewing_8s_before_expiry(token(
            "build",
            json!({"repositories": ["app"]}),
        )))
        .await;
    w.cluster.token_ready("team-a", "build", is_ready).await;
    let old = secret(&w, "build").await["token"].clone();
    w.sim.set_down(testkit::github::Down::Refuse).await;
    // Renewal is due after 60 s and fails: the token stays Ready until it lapses at 70 s.
    let failing = eventually(90, "a failing renewal", || async {
        ready_condition(&w, "build")
            .await
            .filter(|c| c.reason == "RenewalFailing")
    })
    .await;
    assert_eq!(failing.status, ConditionStatus::True);
    assert_eq!(
        secret(&w, "build").await["token"],
        old,
        "the still-valid Secret stays"
    );
    let expired = eventually(60, "the credential to lapse", || async {
        ready_condition(&w, "build")
            .await
            .filter(|c| c.reason == "Expired")
    })
    .await;
    assert_eq!(expired.status, ConditionStatus::False);
    w.sim.set_down(testkit::github::Down::Up).await;
    let back = eventually(330, "a new token once GitHub is back", || async {
        let data = secret(&w, "build").await;
        data.get("token").filter(|t| **t != old).cloned()
    })
    .await;
    assert!(w.sim.is_live(&back));
}

#[tokio::test]
async fn the_primary_rate_limit_reset_is_honoured() {
    let w = world(Duration::from_secs(3600)).await;
    w.sim.fail_next_on(
        route::CREATE_TOKEN,
        1,
        Fault::RateLimited {
            status: 403,
            reset_after_secs: 9,
        },
    );
    let started = std::time::Instant::now();
    w.cluster
        .apply(token("build", json!({"repositories": ["app"]})))
        .await;
    w.cluster
        .token_ready("team-a", "build", reason("GithubRateLimited"))
        .await;
    w.cluster.token_ready("team-a", "build", is_ready).await;
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "retried after {:?}",
        started.elapsed()
    );
    assert_eq!(w.sim.calls(route::CREATE_TOKEN), 2);
}

#[tokio::test]
async fn git_credentials_and_retain_keep_their_promises() {
    let w = world(Duration::from_secs(3600)).await;
    let mut kept = token("kept", json!({"repositories": ["app"]}));
    kept["spec"]["secret"] = json!({"format": "git-credentials", "deletionPolicy": "Retain"});
    w.cluster.apply(kept).await;
    w.cluster.token_ready("team-a", "kept", is_ready).await;
    let data = secret(&w, "kept").await;
    let host = w.sim.ghes_url().trim_start_matches("http://").to_string();
    assert_eq!(
        data[".git-credentials"],
        format!("https://x-access-token:{}@{host}\n", data["token"])
    );
    let api: Api<Secret> = w.cluster.api("team-a");
    assert!(
        api.get("kept")
            .await
            .unwrap()
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    let tokens: Api<VcsAuthToken> = w.cluster.api("team-a");
    tokens
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    eventually(15, "the token to be gone", || {
        let tokens = tokens.clone();
        async move { tokens.get_opt("kept").await.ok().filter(Option::is_none) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        w.cluster.secret_text("team-a", "kept").await.is_some(),
        "Retain keeps the Secret"
    );
    assert!(
        !w.sim.is_live(&data["token"]),
        "the deleted token's credential is revoked all the same"
    );
}

/// A world with hour-long tokens and token `build` in `team-a` Ready: the world and the token
/// its Secret holds.
async fn minted_build_token() -> (World, String) {
    let w = world(Duration::from_secs(3600)).await;
    w.cluster
        .apply(token("build", json!({"repositories": ["app"]})))
        .await;
    w.cluster.token_ready("team-a", "build", is_ready).await;
    let old = secret(&w, "build").await["token"].clone();
    (w, old)
}

/// How often the controllers have reconciled token `build` in `ns`, once that number has held
/// still for two seconds (the wake-ups of the operator's own writes have passed).
async fn settled_reconciles(w: &World, ns: &str) -> u64 {
    let key = format!("VcsAuthToken {}/build", w.cluster.ns(ns));
    let mut last = w.cluster.reconciles(&key);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = w.cluster.reconciles(&key);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn a_connections_periodic_check_wakes_none_of_its_tokens_and_a_real_change_wakes_them() {
    let w = world(Duration::from_secs(3600)).await;
    w.cluster
        .apply(token("build", json!({"repositories": ["app"]})))
        .await;
    w.cluster.token_ready("team-a", "build", is_ready).await;
    let before = settled_reconciles(&w, "team-a").await;

    // What the periodic live check writes when nothing changed: a new status.verifiedAt.
    let connections: Api<Connection> = w.cluster.api(ROOT);
    let stamp = json!({"status": {"verifiedAt": "2026-12-02T12:00:00Z"}});
    (connections.patch_status(
        "acme-github",
        &PatchParams::default(),
        &Patch::Merge(&stamp),
    ))
    .await
    .unwrap();
    assert_eq!(
        settled_reconciles(&w, "team-a").await,
        before,
        "the token woke"
    );

    // A change a token depends on (here, new metadata) still reaches it.
    let note = json!({"metadata": {"annotations": {"example.com/owner": "platform-team"}}});
    (connections.patch("acme-github", &PatchParams::default(), &Patch::Merge(&note)))
        .await
        .unwrap();
    let key = format!("VcsAuthToken {}/build", w.cluster.ns("team-a"));
    eventually(15, "the token to be looked at again", || {
        let n = w.cluster.reconciles(&key);
        async move { (n > before).then_some(()) }
    })
    .await;
    assert_eq!(w.sim.mint_count(), 1, "no new mint");
    w.cluster.stop().await;
}

#[tokio::test]
async fn a_renewal_takes_one_reconcile_and_the_operators_own_writes_wake_the_token_no_more() {
    let (w, old) = minted_build_token().await;
    let before = settled_reconciles(&w, "team-a").await;
    // Past the per-token floor between two mints (10 s), a renewal asked for goes at once.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let api: Api<VcsAuthToken> = w.cluster.api("team-a");
    let ask = json!({"metadata": {"annotations": {"patchbay.dev/renew-requested-at": "2026-12-02T12:00:00Z"}}});
    api.patch("build", &PatchParams::default(), &Patch::Merge(&ask))
        .await
        .unwrap();
    eventually(30, "the renewed credential in the Secret", || async {
        let now = secret(&w, "build").await["token"].clone();
        (now != old).then_some(())
    })
    .await;
    w.cluster
        .token_ready("team-a", "build", |c| {
            c.message.contains("RenewalRequested")
        })
        .await;
    // The renewal wrote the Secret and the status; neither write woke the token again.
    assert_eq!(
        settled_reconciles(&w, "team-a").await - before,
        1,
        "reconciles for one renewal"
    );
    assert_eq!(w.sim.mint_count(), 2);
    w.cluster.stop().await;
}

#[tokio::test]
async fn a_namespace_annotation_wakes_no_token_and_a_relabel_wakes_only_the_moved_subtree() {
    let w = world(Duration::from_secs(3600)).await;
    w.cluster.namespace("team-b", Some("platform")).await;
    w.cluster
        .apply(token("build", json!({"repositories": ["app"]})))
        .await;
    let mut other = token("build", json!({"repositories": ["app"]}));
    other["metadata"]["namespace"] = json!("team-b");
    w.cluster.apply(other).await;
    w.cluster.token_ready("team-a", "build", is_ready).await;
    w.cluster.token_ready("team-b", "build", is_ready).await;
    let (a, b) = (
        settled_reconciles(&w, "team-a").await,
        settled_reconciles(&w, "team-b").await,
    );

    // An annotation on the root: nothing any token resolves through has changed.
    let note = json!({"metadata": {"annotations": {"example.com/owner": "platform-team"}}});
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(w.cluster.client.clone());
    for ns in [ROOT, "platform"] {
        (namespaces.patch(
            &w.cluster.ns(ns),
            &PatchParams::default(),
            &Patch::Merge(&note),
        ))
        .await
        .unwrap();
    }
    assert_eq!(settled_reconciles(&w, "team-a").await, a, "team-a woke");
    assert_eq!(settled_reconciles(&w, "team-b").await, b, "team-b woke");

    // team-a moves straight under the root: only its token looks again, and as the same
    // connection is found there, nothing is minted.
    w.cluster.namespace("team-a", Some(ROOT)).await;
    let key = format!("VcsAuthToken {}/build", w.cluster.ns("team-a"));
    eventually(15, "the moved token to be looked at again", || {
        let n = w.cluster.reconciles(&key);
        async move { (n > a).then_some(()) }
    })
    .await;
    assert_eq!(settled_reconciles(&w, "team-b").await, b, "team-b woke");
    assert_eq!(w.sim.mint_count(), 2, "no new mint");
    w.cluster.stop().await;
}
