//! End to end: the long-lived credentials of slack, azureDevOpsPat and perforceAdmin
//! connections. Each is checked live ("Test connection") against a simulator (testkit::slack,
//! testkit::azure_devops; Perforce has no client here), projected into a Secret in the
//! connection's namespace, and copied into a child namespace only while the connection allows
//! it; a changed connection Secret reaches every projection. Against the real controllers and
//! a real kube-apiserver (tests/support/cluster.rs).

mod support;

use patchbay::api::{Condition, ConditionStatus};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, eventually, reason};
use testkit::azure_devops::AzureDevOpsSim;
use testkit::slack::SlackSim;

const BOT_TOKEN: &str = "xoxb-1111-2222-GoodBotToken";
const PAT: &str = "goodpat52charsofbase32aaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn is_true(c: &Condition) -> bool {
    c.status == ConditionStatus::True
}

fn is_false(c: &Condition) -> bool {
    c.status == ConditionStatus::False
}

fn ready_message(t: &patchbay::api::VcsAuthToken) -> String {
    let conditions = &t.status.as_ref().expect("status").conditions;
    let ready = conditions.iter().find(|c| c.type_ == "Ready");
    ready.map(|c| c.message.clone()).unwrap_or_default()
}

fn connection(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

fn token(namespace: &str, name: &str, connection: &str) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"connection": connection},
    })
}

fn slack(api_url: &str, secret: &str) -> Value {
    json!({"slack": {"clientId": "0000000000.0000000000000", "apiUrl": api_url,
        "clientSecret": {"name": secret, "key": "client-secret"},
        "botToken": {"name": secret, "key": "bot-token"}}})
}

fn azure(server_url: &str, secret: &str) -> Value {
    json!({"azureDevOpsPat": {"serverUrl": server_url,
        "personalAccessToken": {"name": secret, "key": "pat"}}})
}

#[tokio::test]
async fn slack_azure_devops_and_perforce_connections_are_tested_live_and_projected() {
    let cluster = Cluster::start().await;
    let slack_sim = SlackSim::start(&[BOT_TOKEN]).await;
    let azure_sim = AzureDevOpsSim::start("acme", &[PAT]).await;
    for (name, bot) in [("slack", BOT_TOKEN), ("slack-bad", "xoxb-wrong")] {
        let data = [("client-secret", "x"), ("bot-token", bot)];
        cluster.secret(ROOT, name, &data).await;
        cluster
            .apply(connection(ROOT, name, slack(&slack_sim.api_url(), name)))
            .await;
    }
    for (name, pat) in [("azure", PAT), ("azure-bad", "expiredpat")] {
        cluster.secret(ROOT, name, &[("pat", pat)]).await;
        let spec = azure(&azure_sim.organization_url(), name);
        cluster.apply(connection(ROOT, name, spec)).await;
    }
    cluster
        .secret(ROOT, "p4", &[("password", "p4-secret")])
        .await;
    cluster
        .apply(connection(
            ROOT,
            "p4",
            json!({"perforceAdmin": {
            "host": "ssl:perforce.example.com:1666", "user": "p4admin",
            "password": {"name": "p4", "key": "password"}}}),
        ))
        .await;

    // "Test connection": a good credential is Verified, a bad one says what to fix.
    let ok = cluster.connection_verified(ROOT, "slack", is_true).await;
    assert!(ok.message.contains("ci-notifier"), "{}", ok.message);
    let bad = cluster
        .connection_verified(ROOT, "slack-bad", is_false)
        .await;
    assert_eq!(bad.reason, "AuthenticationFailed", "{}", bad.message);
    assert!(bad.message.contains("invalid_auth"), "{}", bad.message);
    let ok = cluster.connection_verified(ROOT, "azure", is_true).await;
    assert!(ok.message.contains("CI Bot"), "{}", ok.message);
    let bad = cluster
        .connection_verified(ROOT, "azure-bad", is_false)
        .await;
    assert_eq!(bad.reason, "AuthenticationFailed", "{}", bad.message);
    assert!(bad.message.contains("HTTP 401"), "{}", bad.message);
    let p4 = cluster
        .connection_verified(ROOT, "p4", |c| c.status == ConditionStatus::Unknown)
        .await;
    assert_eq!(p4.reason, "PerforceClientNotAvailable");

    // A revoked Slack token gets its own reason on the next check.
    slack_sim.revoke(BOT_TOKEN);
    cluster
        .apply(
            json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "slack", "namespace": ROOT, "annotations":
                {"patchbay.dev/verify-requested-at": "2026-12-01T00:00:00Z"}},
            "spec": slack(&slack_sim.api_url(), "slack")}),
        )
        .await;
    let revoked = cluster
        .connection_verified(ROOT, "slack", |c| c.reason == "TokenRevoked")
        .await;
    assert!(revoked.message.contains("reinstall"), "{}", revoked.message);

    // Tokens in the connection's namespace receive the credential in the layout its tools read.
    // (The tokens' own Secrets are named apart from the connections' Secrets: patchbay never
    // overwrites a Secret it does not manage.)
    for name in ["slack", "azure", "p4"] {
        let out = format!("{name}-out");
        cluster.apply(token(ROOT, &out, name)).await;
        let t = cluster.token_ready(ROOT, &out, is_true).await;
        let message = ready_message(&t);
        assert!(message.contains("long-lived"), "{message}");
        assert_eq!(t.status.as_ref().unwrap().expires_at, None);
    }
    let slack_out = cluster.secret_text(ROOT, "slack-out").await.unwrap();
    assert_eq!(slack_out["SLACK_BOT_TOKEN"], BOT_TOKEN);
    let azure_out = cluster.secret_text(ROOT, "azure-out").await.unwrap();
    assert_eq!(azure_out["AZURE_DEVOPS_EXT_PAT"], PAT);
    assert_eq!(azure_out["username"], "pat");
    assert_eq!(azure_out["password"], PAT);
    let p4_out = cluster.secret_text(ROOT, "p4-out").await.unwrap();
    assert_eq!(p4_out["P4PORT"], "ssl:perforce.example.com:1666");
    assert_eq!(p4_out["P4USER"], "p4admin");
    assert_eq!(p4_out["P4PASSWD"], "p4-secret");
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn a_long_lived_credential_is_copied_only_while_the_connection_allows_it_and_follows_its_secret()
 {
    let cluster = Cluster::start().await;
    cluster.namespace("team", Some(ROOT)).await;
    let sim = AzureDevOpsSim::start("acme", &[PAT, "rotatedpat"]).await;
    cluster.secret(ROOT, "azure", &[("pat", PAT)]).await;
    let mut spec = azure(&sim.organization_url(), "azure");
    cluster.apply(connection(ROOT, "azure", spec.clone())).await;
    cluster.apply(token(ROOT, "home", "azure")).await;
    cluster.apply(token("team", "copy", "azure")).await;
    cluster.token_ready(ROOT, "home", is_true).await;

    // Refused in the child namespace until the connection allows copies.
    let refused = cluster
        .token_ready("team", "copy", reason("CopyNotAllowed"))
        .await;
    let message = ready_message(&refused);
    assert!(
        message.contains("Azure DevOps personal access token")
            && message.contains("copySecretToSubProjects"),
        "{message}"
    );
    assert!(cluster.secret_text("team", "copy").await.is_none());

    spec["copySecretToSubProjects"] = json!(true);
    cluster.apply(connection(ROOT, "azure", spec.clone())).await;
    let copied = cluster.token_ready("team", "copy", is_true).await;
    let at = copied
        .status
        .as_ref()
        .unwrap()
        .connection_ref
        .clone()
        .unwrap();
    assert_eq!(
        at.namespace,
        cluster.ns(ROOT),
        "the status says where it came from"
    );
    assert_eq!(
        cluster.secret_text("team", "copy").await.unwrap()["password"],
        PAT
    );

    // A rotated PAT reaches every projection, without touching the tokens.
    cluster
        .secret(ROOT, "azure", &[("pat", "rotatedpat")])
        .await;
    let shared = &cluster;
    for (ns, name) in [(ROOT, "home"), ("team", "copy")] {
        let cluster = shared;
        eventually(
            30,
            &format!("{ns}/{name} holds the rotated PAT"),
            || async move {
                let data = cluster.secret_text(ns, name).await?;
                (data["password"] == "rotatedpat" && data["AZURE_DEVOPS_EXT_PAT"] == "rotatedpat")
                    .then_some(())
            },
        )
        .await;
    }

    // Taking the right back withdraws the copy; the home namespace keeps its projection.
    spec["copySecretToSubProjects"] = json!(false);
    cluster.apply(connection(ROOT, "azure", spec)).await;
    cluster
        .token_ready("team", "copy", reason("Withdrawn"))
        .await;
    eventually(30, "the copy is deleted", || async {
        cluster
            .secret_text("team", "copy")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(cluster.secret_text(ROOT, "home").await.is_some());
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn hostile_servers_named_by_slack_npm_and_registry_connections_get_a_reason_not_a_crash() {
    use testkit::hostile::{Behaviour, HostileServer};
    let cluster = Cluster::start().await;
    cluster
        .secret(
            ROOT,
            "s",
            &[
                ("client-secret", "x"),
                ("bot-token", BOT_TOKEN),
                ("password", "p"),
            ],
        )
        .await;
    let endless = HostileServer::start(Behaviour::EndlessBody).await.unwrap();
    let garbage = HostileServer::start(Behaviour::Garbage).await.unwrap();
    let redirect_target = HostileServer::start(Behaviour::Record).await.unwrap();
    let redirect = HostileServer::start(Behaviour::Redirect {
        location: format!("{}/v2/", redirect_target.url()),
    })
    .await
    .unwrap();
    let limited = HostileServer::start(Behaviour::AbsurdRetryAfter)
        .await
        .unwrap();
    cluster
        .apply(connection(ROOT, "endless", slack(&endless.url(), "s")))
        .await;
    cluster
        .apply(connection(ROOT, "garbage", slack(&garbage.url(), "s")))
        .await;
    let registry = |url: String| {
        json!({"dockerRegistry": {"url": url, "username": "ci",
            "password": {"name": "s", "key": "password"}}})
    };
    cluster
        .apply(connection(ROOT, "redirect", registry(redirect.url())))
        .await;
    cluster
        .apply(connection(ROOT, "limited", registry(limited.url())))
        .await;
    cluster
        .apply(connection(
            ROOT,
            "npm-garbage",
            json!({"npmRegistry": {
            "registryUrl": garbage.url(), "accessToken": {"name": "s", "key": "password"}}}),
        ))
        .await;
    for (name, expected) in [
        ("endless", "InvalidResponse"),
        ("garbage", "AuthenticationFailed"),
        ("redirect", "ServerError"),
        ("limited", "ServerError"),
        ("npm-garbage", "AuthenticationFailed"),
    ] {
        let v = cluster.connection_verified(ROOT, name, is_false).await;
        assert_eq!(v.reason, expected, "{name}: {}", v.message);
        assert!(!v.message.contains(BOT_TOKEN), "{}", v.message);
    }
    assert_eq!(redirect_target.requests(), 0, "no redirect is followed");
    assert!(cluster.operator_running());
    cluster.stop().await;
}

#[tokio::test]
async fn a_slack_app_with_token_rotation_gets_a_twelve_hour_bot_token_rotated_and_written_back() {
    use testkit::slack::CLIENT;
    let slack_sim = SlackSim::start(&[BOT_TOKEN]).await;
    let cluster = Cluster::start().await;
    cluster.namespace("team", Some(ROOT)).await;
    let secrets = [("client-secret", CLIENT.1), ("bot-token", BOT_TOKEN)];
    cluster.secret(ROOT, "slack", &secrets).await;
    let mut spec = slack(&slack_sim.api_url(), "slack");
    spec["slack"]["clientId"] = json!(CLIENT.0);
    cluster.apply(connection(ROOT, "slack", spec)).await;
    let installed = slack_sim.refresh_token();
    cluster
        .secret("team", "slack-grant", &[("refresh_token", &installed)])
        .await;
    let mut rotating = token("team", "notify", "slack");
    rotating["spec"]["oauth"] =
        json!({"refreshToken": {"name": "slack-grant", "key": "refresh_token"}});
    cluster.apply(rotating).await;

    let t = cluster.token_ready("team", "notify", is_true).await;
    let data = cluster.secret_text("team", "notify").await.unwrap();
    let bot = data["SLACK_BOT_TOKEN"].clone();
    assert!(
        bot.starts_with("xoxe.xoxb-"),
        "a rotated bot token, not the static one"
    );
    assert!(slack_sim.accepts(&bot));
    assert_eq!(data["access_token"], bot);
    let status = t.status.unwrap();
    let lifetime = (status.expires_at.unwrap().0).duration_since(status.issued_at.unwrap().0);
    assert!(
        (43_190..=43_200).contains(&lifetime.as_secs()),
        "{lifetime:?}"
    );
    let grant = cluster.secret_text("team", "slack-grant").await.unwrap();
    assert_ne!(
        grant["refresh_token"], installed,
        "the rotated refresh token is stored"
    );
    assert_eq!(slack_sim.rotations(), 1);

    // A refresh token Slack no longer knows (its errors arrive as HTTP 200 with ok: false).
    cluster
        .secret(
            "team",
            "stale-grant",
            &[("refresh_token", "xoxe-1-unknown")],
        )
        .await;
    let mut stale = token("team", "stale", "slack");
    stale["spec"]["oauth"] =
        json!({"refreshToken": {"name": "stale-grant", "key": "refresh_token"}});
    cluster.apply(stale).await;
    let refused = cluster
        .token_ready("team", "stale", reason("ReauthorizationRequired"))
        .await;
    assert!(
        ready_message(&refused).contains("invalid_refresh_token"),
        "{}",
        ready_message(&refused)
    );
    assert!(cluster.operator_running());
    cluster.stop().await;
}
