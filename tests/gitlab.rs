//! GitLab end to end against the GitLab simulator (testkit::gitlab), whose token endpoint has
//! GitLab's quirks (single-use refresh tokens, a refresh revokes the access token it replaces,
//! a replayed refresh token revokes the whole grant): a user's grant gives narrower project
//! and group access tokens that reach only what the token names; renewal mints a new one and
//! revokes the old after the grace period; a role the user lacks is refused with a reason.
//! Against the real controllers and a real kube-apiserver.

mod support;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::tz::TimeZone;
use kube::api::{Api, Patch, PatchParams};
use patchbay::api::{Condition, ConditionStatus, VcsAuthToken};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, ready_message, reason};
use testkit::gitlab::{GitlabSim, Role};

const CLIENT_ID: &str = "gitlab-app";
const CLIENT_SECRET: &str = "gitlab-app-secret";

fn is_true(c: &Condition) -> bool {
    c.status == ConditionStatus::True
}

fn token(name: &str, grant: &str, gitlab: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"connection": "gitlab", "oauth": {
            "refreshToken": {"name": grant, "key": "refresh_token"}, "gitlab": gitlab}},
    })
}

/// What GitLab answers `GET /api/v4/projects/{path}` with `token`.
async fn project_status(sim: &GitlabSim, token: &str, path: &str) -> u16 {
    let encoded: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    let url = format!("{}/api/v4/projects/{encoded}", sim.url());
    let answer = reqwest::Client::new()
        .get(url)
        .header("private-token", token)
        .send()
        .await
        .unwrap();
    answer.status().as_u16()
}

async fn password(cluster: &Cluster, name: &str) -> String {
    let data = cluster.secret_text("team", name).await.expect("the Secret");
    assert_eq!(data["username"], "oauth2");
    data["password"].clone()
}

#[tokio::test]
async fn a_users_grant_mints_project_and_group_tokens_that_reach_only_what_they_name() {
    let today = Timestamp::now().to_zoned(TimeZone::UTC).date();
    let sim = GitlabSim::start(CLIENT_ID, CLIENT_SECRET, &today.to_string()).await;
    sim.add_project(
        "acme/app",
        &[("alice", Role::Maintainer), ("bob", Role::Developer)],
    );
    sim.add_project("acme/other", &[("alice", Role::Maintainer)]);
    sim.add_project("platform/tools", &[]);
    sim.add_group_member("platform", "alice", Role::Owner);
    let cluster = Cluster::start_with_grace(Duration::from_secs(4)).await;
    cluster.namespace("team", Some(ROOT)).await;
    cluster
        .secret(ROOT, "gitlab", &[("secret", CLIENT_SECRET)])
        .await;
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "gitlab", "namespace": ROOT},
            "spec": {"gitlab": {"serverUrl": sim.url(), "applicationId": CLIENT_ID,
                "secret": {"name": "gitlab", "key": "secret"}}},
        }))
        .await;
    cluster
        .secret("team", "alice", &[("refresh_token", &sim.grant("alice"))])
        .await;
    cluster
        .secret("team", "bob", &[("refresh_token", &sim.grant("bob"))])
        .await;
    let read = json!({"project": "acme/app", "scopes": ["read_repository"]});
    cluster.apply(token("deploy", "alice", read)).await;

    let t = cluster.token_ready("team", "deploy", is_true).await;
    let first = password(&cluster, "deploy").await;
    assert!(
        first.starts_with("glpat-"),
        "a project access token, not the user's own"
    );
    assert_eq!(project_status(&sim, &first, "acme/app").await, 200);
    assert_eq!(
        project_status(&sim, &first, "acme/other").await,
        404,
        "narrowed to acme/app"
    );
    let expiry = today
        .checked_add(k8s_openapi::jiff::Span::new().days(2))
        .unwrap();
    assert_eq!(
        sim.live_resource_tokens(),
        vec![("acme/app".to_string(), 20, expiry.to_string())]
    );
    let status = t.status.unwrap();
    assert_eq!(status.repositories, vec!["acme/app".to_string()]);
    assert_eq!(
        status.permissions.get("read_repository").as_deref(),
        Some("reporter")
    );
    assert_eq!(sim.refreshes(), 1);

    // Renewal mints a new token and revokes the old one once the grace has passed; the
    // grant's access token is reused, not refreshed again.
    let api: Api<VcsAuthToken> = cluster.api("team");
    let ask = json!({"metadata": {"annotations": {"patchbay.dev/renew-requested-at": "2026-12-02T13:00:00Z"}}});
    api.patch("deploy", &PatchParams::default(), &Patch::Merge(&ask))
        .await
        .unwrap();
    let second = testkit::wait::observe(30, "a new project token", || async {
        let now = password(&cluster, "deploy").await;
        (now != first)
            .then_some(now)
            .ok_or_else(|| "still the first".to_string())
    })
    .await;
    assert!(sim.is_live(&second));
    testkit::wait::observe(
        30,
        "the old project token revoked after the grace",
        || async {
            (!sim.is_live(&first))
                .then_some(())
                .ok_or_else(|| "still live".to_string())
        },
    )
    .await;
    assert!(sim.is_live(&second));
    assert_eq!(sim.resource_tokens(), 2);
    assert_eq!(
        sim.refreshes(),
        1,
        "the grant's access token was still fresh"
    );

    // A group token reaches the group's projects; a role the user lacks is refused.
    let group = json!({"group": "platform", "scopes": ["read_api"], "accessLevel": "developer"});
    cluster.apply(token("platform", "alice", group)).await;
    cluster.token_ready("team", "platform", is_true).await;
    let platform = password(&cluster, "platform").await;
    assert_eq!(project_status(&sim, &platform, "platform/tools").await, 200);
    assert_eq!(project_status(&sim, &platform, "acme/app").await, 404);
    let over =
        json!({"project": "acme/app", "scopes": ["write_repository"], "accessLevel": "maintainer"});
    cluster.apply(token("bob-deploy", "bob", over)).await;
    let refused = cluster
        .token_ready("team", "bob-deploy", reason("InsufficientRole"))
        .await;
    assert!(
        ready_message(&refused).contains("Maintainer"),
        "{}",
        ready_message(&refused)
    );
    assert!(cluster.secret_text("team", "bob-deploy").await.is_none());
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn other_kinds_refuse_a_gitlab_access_token_request_naming_the_field() {
    let cluster = Cluster::start().await;
    cluster.namespace("team", Some(ROOT)).await;
    cluster.secret(ROOT, "google", &[("s", "x")]).await;
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "gitlab", "namespace": ROOT},
            "spec": {"google": {"clientId": "c", "clientSecret": {"name": "google", "key": "s"}}},
        }))
        .await;
    let read = json!({"project": "acme/app", "scopes": ["read_repository"]});
    cluster.apply(token("t", "grant", read)).await;
    let refused = cluster
        .token_ready("team", "t", reason("InvalidSpec"))
        .await;
    assert!(
        ready_message(&refused).starts_with("spec.oauth.gitlab:"),
        "{}",
        ready_message(&refused)
    );
    cluster.stop().await;
}
