//! End to end, playing the tenant: a tenant controls its own namespace, its Connections,
//! tokens and Secrets, and any server its own Connection names. Against the real controllers
//! and a real kube-apiserver (tests/support/cluster.rs), the GitHub simulator for the
//! well-behaved tenant, and hostile servers (testkit::hostile) for the other.

mod support;

use std::time::{Duration, Instant};

use patchbay::api::{Condition, ConditionStatus, VcsAuthToken};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, eventually, reason};
use support::github::{github_app, install_acme};
use testkit::github::{AccountType, GithubSim, InstallationSpec, SimConfig};
use testkit::hostile::{Behaviour, HostileServer};
use testkit::keys::RsaKey;

const APP_ID: u64 = 42;

fn is_ready(c: &Condition) -> bool {
    c.status == ConditionStatus::True
}

fn not_ready(c: &Condition) -> bool {
    c.status == ConditionStatus::False
}

fn token(namespace: &str, name: &str, connection: &str, request: Value) -> Value {
    let mut spec = json!({"connection": connection});
    if let Some(block) = request.as_object() {
        for (k, v) in block {
            spec[k] = v.clone();
        }
    }
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

fn connection(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

fn message(t: &VcsAuthToken) -> String {
    let conditions = &t.status.as_ref().unwrap().conditions;
    let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    format!("{}: {}", ready.reason, ready.message)
}

/// A GitHub App on the simulator, installed on `acme`, with tokens living `lifetime`; the
/// connection `acme-github` in the root; namespaces `good` and `evil` below the root.
async fn world(lifetime: Duration) -> (Cluster, GithubSim) {
    let config = SimConfig {
        token_lifetime: lifetime,
        ..SimConfig::default()
    };
    let sim = GithubSim::start(config).await.unwrap();
    let key = install_acme(&sim, APP_ID);
    sim.add_owner("victim", AccountType::Organization);
    sim.add_repo("victim", "app");
    sim.add_installation(
        InstallationSpec::new(APP_ID, "victim").permissions([("contents", "write")]),
    );
    let cluster = Cluster::start().await;
    cluster.namespace("good", Some(ROOT)).await;
    cluster.namespace("evil", Some(ROOT)).await;
    let pem = key.private_pkcs1_pem();
    cluster
        .secret(ROOT, "app-key", &[("private-key.pem", &pem)])
        .await;
    let acme = github_app(&sim.ghes_url(), APP_ID, "app-key");
    cluster.apply(connection(ROOT, "acme-github", acme)).await;
    (cluster, sim)
}

#[tokio::test]
async fn hostile_provider_servers_neither_stop_the_operator_nor_delay_other_tenants() {
    let (cluster, sim) = world(Duration::from_secs(90)).await;
    let _ = &sim;
    let good = token(
        "good",
        "build",
        "acme-github",
        json!({"github": {"repositories": ["app"]}}),
    );
    cluster.apply(good).await;

    // The evil tenant's own App key, and a connection to each hostile server it runs.
    let evil_key = RsaKey::generate().private_pkcs1_pem();
    cluster
        .secret("evil", "evil-key", &[("private-key.pem", &evil_key)])
        .await;
    let target = HostileServer::start(Behaviour::Record).await.unwrap();
    let behaviours = [
        ("absurd-wait", Behaviour::AbsurdRetryAfter),
        ("endless", Behaviour::EndlessBody),
        ("hang", Behaviour::Hang),
        ("garbage", Behaviour::Garbage),
        (
            "redirect",
            Behaviour::Redirect {
                location: format!("{}/steal", target.url()),
            },
        ),
    ];
    let mut servers = Vec::new();
    for (name, behaviour) in behaviours {
        let server = HostileServer::start(behaviour).await.unwrap();
        let spec = github_app(&server.url(), APP_ID, "evil-key");
        cluster.apply(connection("evil", name, spec)).await;
        // More tokens on the hanging server than the operator has reconcile slots.
        let count = if name == "hang" { 40 } else { 1 };
        for i in 0..count {
            let request = json!({"github": {"repositories": ["app"]}});
            let t = token("evil", &format!("{name}-{i}"), name, request);
            cluster.apply(t).await;
        }
        servers.push(server);
    }
    let sts = HostileServer::start(Behaviour::AwsThrottling)
        .await
        .unwrap();
    cluster
        .secret(
            "evil",
            "aws-keys",
            &[("id", "AKIAHOSTILE000000000"), ("secret", "x")],
        )
        .await;
    let aws = json!({"aws": {"region": "eu-west-1", "stsEndpoint": sts.url(), "credentials": {
        "accessKeys": {"accessKeyId": {"name": "aws-keys", "key": "id"},
                       "secretAccessKey": {"name": "aws-keys", "key": "secret"}}}}});
    cluster
        .apply(connection("evil", "throttled", aws.clone()))
        .await;
    cluster
        .apply(token("evil", "aws-0", "throttled", json!({"aws": {}})))
        .await;
    let endless_sts = HostileServer::start(Behaviour::EndlessBody).await.unwrap();
    let mut flood = aws;
    flood["aws"]["stsEndpoint"] = json!(endless_sts.url());
    cluster.apply(connection("evil", "flood", flood)).await;
    cluster
        .apply(token("evil", "aws-flood", "flood", json!({"aws": {}})))
        .await;

    let first = cluster.token_ready("good", "build", is_ready).await;
    let minted_at = Instant::now();
    assert_eq!(first.status.as_ref().unwrap().revision, 1);

    // Each hostile answer ends in a clear reason on the tenant's own token.
    let expect = [
        ("absurd-wait-0", "GithubRateLimited"),
        ("endless-0", "GithubInvalidResponse"),
        ("redirect-0", "GithubError"),
        ("aws-0", "Throttled"),
    ];
    for (name, wanted) in expect {
        let t = cluster.token_ready("evil", name, reason(wanted)).await;
        eprintln!("evil/{name}: {}", message(&t));
    }
    let absurd = cluster
        .token_ready("evil", "absurd-wait-0", reason("GithubRateLimited"))
        .await;
    assert!(
        message(&absurd).contains("retrying in 3600 s"),
        "{}",
        message(&absurd)
    );
    let throttled = cluster
        .token_ready("evil", "aws-0", reason("Throttled"))
        .await;
    assert!(
        message(&throttled).contains("retry after 3600 s"),
        "{}",
        message(&throttled)
    );
    let flooded = cluster
        .token_ready("evil", "aws-flood", reason("InvalidResponse"))
        .await;
    assert!(
        message(&flooded).contains("length limit exceeded"),
        "{}",
        message(&flooded)
    );
    eprintln!("evil/aws-flood: {}", message(&flooded));
    let garbage = cluster.token_ready("evil", "garbage-0", not_ready).await;
    eprintln!("evil/garbage-0: {}", message(&garbage));
    for name in ["aws-0", "absurd-wait-0"] {
        let key = format!("VcsAuthToken {}/{name}", cluster.ns("evil"));
        let held = cluster.ctx.held_for(&key).unwrap_or_default();
        assert!(
            held <= Duration::from_secs(3600),
            "{name}: held for {held:?}"
        );
    }

    // Meanwhile the good tenant's token is renewed on schedule (at 2/3 of 90 s), although the
    // hanging server holds every call it is given for 20 s.
    let renewed = eventually(100, "the good token's renewal", || {
        let api = cluster.api::<VcsAuthToken>("good");
        async move {
            let t = api.get("build").await.ok()?;
            (t.status.as_ref()?.revision >= 2).then_some(t)
        }
    })
    .await;
    let took = minted_at.elapsed();
    assert!(
        took < Duration::from_secs(85),
        "renewed {took:?} after the first mint"
    );
    assert!(
        renewed.status.unwrap().conditions.iter().any(is_ready),
        "still Ready"
    );
    // The hanging server gets its share of calls, 20 s each, and every token there ends up
    // with the reason.
    let hung = eventually(150, "every token on the hanging server to fail", || {
        let api = cluster.api::<VcsAuthToken>("evil");
        async move {
            let mut last = None;
            for i in 0..40 {
                let t = api.get(&format!("hang-{i}")).await.ok()?;
                let ready = t
                    .status
                    .as_ref()?
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")?;
                if ready.reason != "GithubUnreachable" {
                    return None;
                }
                last = Some(t);
            }
            last
        }
    })
    .await;
    eprintln!("evil/hang-39: {}", message(&hung));

    assert_eq!(target.requests(), 0, "no redirect was followed");
    assert!(cluster.operator_running(), "the operator is still running");
    cluster.stop().await;
}

#[tokio::test]
async fn a_tenant_cannot_reach_beyond_what_the_connection_owner_allowed() {
    let (cluster, sim) = world(Duration::from_secs(3600)).await;
    let _ = &sim;
    // A foreign owner: the App is installed on victim too, but the connection pins acme.
    let foreign = json!({"github": {"owner": "victim", "repositories": ["app"]}});
    cluster
        .apply(token("evil", "foreign", "acme-github", foreign))
        .await;
    let refused = cluster
        .token_ready("evil", "foreign", reason("OwnerNotAllowed"))
        .await;
    assert!(
        message(&refused).contains("victim"),
        "{}",
        message(&refused)
    );
    assert!(cluster.secret_text("evil", "foreign").await.is_none());

    // An AWS source in the root lends its identity to the ci-* roles only.
    cluster
        .secret(
            ROOT,
            "aws-keys",
            &[("id", "AKIASOURCE0000000000"), ("secret", "x")],
        )
        .await;
    let keys = json!({"accessKeyId": {"name": "aws-keys", "key": "id"},
                      "secretAccessKey": {"name": "aws-keys", "key": "secret"}});
    let source = json!({"availableForSubProjects": true, "aws": {"region": "eu-west-1",
        "allowedRoleArns": ["arn:aws:iam::123456789012:role/ci-*"],
        "credentials": {"accessKeys": keys.clone()}}});
    cluster.apply(connection(ROOT, "aws-source", source)).await;
    let role = |arn: &str, external_id: Option<&str>| {
        let mut role = json!({"connection": "aws-source", "roleArn": arn});
        if let Some(id) = external_id {
            role["externalId"] = json!(id);
        }
        json!({"aws": {"region": "eu-west-1", "credentials": {"iamRole": role}}})
    };
    let admin = "arn:aws:iam::123456789012:role/admin";
    let deployer = "arn:aws:iam::123456789012:role/ci-deployer";
    cluster
        .apply(connection("evil", "climber", role(admin, None)))
        .await;
    cluster
        .apply(connection(
            "evil",
            "forger",
            role(deployer, Some("someone-elses-id")),
        ))
        .await;
    cluster
        .apply(connection("evil", "honest", role(deployer, None)))
        .await;
    let climbed = cluster
        .connection_ready("evil", "climber", reason("RoleNotAllowed"))
        .await;
    assert!(
        climbed.message.contains("role/admin"),
        "{}",
        climbed.message
    );
    cluster
        .connection_ready("evil", "forger", reason("ExternalIdNotAllowed"))
        .await;
    cluster.connection_ready("evil", "honest", is_ready).await;

    // Long-lived keys stay in their connection's namespace.
    let mut static_keys = keys;
    static_keys["useSessionCredentials"] = json!(false);
    let copyable = json!({"availableForSubProjects": true, "aws": {"region": "eu-west-1",
        "credentials": {"accessKeys": static_keys}}});
    cluster.apply(connection(ROOT, "static", copyable)).await;
    cluster
        .apply(token("evil", "copy", "static", json!({"aws": {}})))
        .await;
    let copy = cluster
        .token_ready("evil", "copy", reason("CopyNotAllowed"))
        .await;
    assert!(
        message(&copy).contains("long-lived keys"),
        "{}",
        message(&copy)
    );
    assert!(cluster.secret_text("evil", "copy").await.is_none());
    assert!(cluster.operator_running());
    cluster.stop().await;
}

/// The token value in Secret `good/name`.
async fn live_token(cluster: &Cluster, name: &str) -> String {
    let data = cluster.secret_text("good", name).await.unwrap_or_default();
    data.get("token").cloned().unwrap_or_default()
}

#[tokio::test]
async fn losing_the_right_to_a_credential_withdraws_it_and_a_renamed_secret_moves_it() {
    let (cluster, sim) = world(Duration::from_secs(3600)).await;
    let app = json!({"github": {"repositories": ["app"]}});
    cluster
        .apply(token("good", "build", "acme-github", app.clone()))
        .await;
    cluster
        .apply(token("good", "deploy", "acme-github", app.clone()))
        .await;
    let mut renamed = token("good", "moved", "acme-github", app);
    cluster.apply(renamed.clone()).await;
    for name in ["build", "deploy", "moved"] {
        cluster.token_ready("good", name, is_ready).await;
    }
    let (build, deploy, moved) = (
        live_token(&cluster, "build").await,
        live_token(&cluster, "deploy").await,
        live_token(&cluster, "moved").await,
    );
    assert!(sim.is_live(&build) && sim.is_live(&deploy) && sim.is_live(&moved));

    // Renaming a token's Secret revokes the credential in the old one and deletes it.
    renamed["spec"]["secret"] = json!({"name": "moved-elsewhere"});
    cluster.apply(renamed).await;
    eventually(30, "the renamed Secret to replace the old one", || async {
        let old = cluster.secret_text("good", "moved").await;
        let new = cluster.secret_text("good", "moved-elsewhere").await?;
        (old.is_none() && new.contains_key("token")).then_some(())
    })
    .await;
    assert!(
        !sim.is_live(&moved),
        "the old Secret's credential is revoked"
    );

    // The owner tightens the connection's ceiling: the tokens it no longer allows lose what
    // they hold. (Same spec as in `world`, plus allowedRepositories.)
    let mut tightened = github_app(&sim.ghes_url(), APP_ID, "app-key");
    tightened["githubApp"]["allowedRepositories"] = json!(["lib"]);
    cluster
        .apply(connection(ROOT, "acme-github", tightened))
        .await;
    let withdrawn = cluster
        .token_ready("good", "build", reason("Withdrawn"))
        .await;
    assert!(
        message(&withdrawn).contains("RepositoryNotAllowed"),
        "{}",
        message(&withdrawn)
    );
    assert!(cluster.secret_text("good", "build").await.is_none());
    assert!(!sim.is_live(&build), "the withdrawn credential is revoked");
    let status = withdrawn.status.unwrap();
    assert_eq!((status.token_id, status.issuer), (None, None));

    // The connection is deleted: nothing minted from it stays.
    let connections = cluster.api::<patchbay::api::Connection>(ROOT);
    connections
        .delete("acme-github", &Default::default())
        .await
        .unwrap();
    cluster
        .token_ready("good", "deploy", reason("Withdrawn"))
        .await;
    assert!(cluster.secret_text("good", "deploy").await.is_none());
    assert!(!sim.is_live(&deploy));
    assert!(cluster.operator_running());
    cluster.stop().await;
}

async fn revision(cluster: &Cluster, name: &str) -> i64 {
    let t = cluster.api::<VcsAuthToken>("good").get(name).await.unwrap();
    t.status.map(|s| s.revision).unwrap_or_default()
}

#[tokio::test]
async fn rapid_renew_requests_are_rationed_and_edits_that_change_no_credential_renew_nothing() {
    use kube::api::{Patch, PatchParams};
    let (cluster, sim) = world(Duration::from_secs(3600)).await;
    let app = json!({"github": {"repositories": ["app"]}});
    cluster
        .apply(token("good", "build", "acme-github", app))
        .await;
    cluster.token_ready("good", "build", is_ready).await;
    assert_eq!(revision(&cluster, "build").await, 1);

    // Renaming the connection for the wiki, and labelling its key Secret, change no credential.
    let mut renamed = github_app(&sim.ghes_url(), APP_ID, "app-key");
    renamed["displayName"] = json!("ACME CI (see the wiki)");
    cluster
        .apply(connection(ROOT, "acme-github", renamed))
        .await;
    let label = json!({"metadata": {"labels": {"team": "platform"}}});
    let secrets = cluster.api::<k8s_openapi::api::core::v1::Secret>(ROOT);
    (secrets
        .patch("app-key", &PatchParams::default(), &Patch::Merge(&label))
        .await)
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(revision(&cluster, "build").await, 1, "nothing was renewed");

    // Five renewal requests in two seconds: the floor (10 s between a token's mints) lets
    // through at most two mints, and the last request is the one honoured.
    let tokens = cluster.api::<VcsAuthToken>("good");
    for i in 1..=5 {
        let ask = json!({"metadata": {"annotations": {"patchbay.dev/renew-requested-at": format!("r{i}")}}});
        (tokens
            .patch("build", &PatchParams::default(), &Patch::Merge(&ask))
            .await)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    eventually(30, "the last renewal request to be honoured", || async {
        let secret = cluster.api::<k8s_openapi::api::core::v1::Secret>("good");
        let s = secret.get("build").await.ok()?;
        let honoured = s
            .metadata
            .annotations?
            .get("patchbay.dev/renew-requested-at")?
            .clone();
        (honoured == "r5").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let minted = revision(&cluster, "build").await;
    assert!((2..=3).contains(&minted), "{minted} mints for 5 requests");
    cluster.stop().await;
}

#[tokio::test]
async fn a_superseded_credential_stays_valid_for_the_grace_even_across_a_restart() {
    use kube::api::{Patch, PatchParams};
    let sim = GithubSim::start(SimConfig::default()).await.unwrap();
    let key = install_acme(&sim, APP_ID);
    let mut cluster = Cluster::start_with_grace(Duration::from_secs(6)).await;
    cluster.namespace("good", Some(ROOT)).await;
    let pem = key.private_pkcs1_pem();
    cluster
        .secret(ROOT, "app-key", &[("private-key.pem", &pem)])
        .await;
    let app = github_app(&sim.ghes_url(), APP_ID, "app-key");
    cluster.apply(connection(ROOT, "acme-github", app)).await;
    let request = json!({"github": {"repositories": ["app"]}});
    cluster
        .apply(token("good", "build", "acme-github", request))
        .await;
    cluster.token_ready("good", "build", is_ready).await;
    let first = live_token(&cluster, "build").await;

    let tokens = cluster.api::<VcsAuthToken>("good");
    let renew = |value: &str| json!({"metadata": {"annotations": {"patchbay.dev/renew-requested-at": value}}});
    let params = PatchParams::default();
    (tokens
        .patch("build", &params, &Patch::Merge(&renew("1")))
        .await)
        .unwrap();
    eventually(30, "the renewal", || async {
        let second = live_token(&cluster, "build").await;
        (!second.is_empty() && second != first).then_some(())
    })
    .await;
    let data = cluster.secret_text("good", "build").await.unwrap();
    assert_eq!(
        data["superseded-token"], first,
        "the old secret waits in the Secret"
    );
    assert!(
        sim.is_live(&first),
        "the superseded token still works during the grace"
    );
    let pending = tokens
        .get("build")
        .await
        .unwrap()
        .status
        .unwrap()
        .superseded;
    assert!(pending.is_some(), "the status records when to revoke it");

    // The operator restarts during the grace: the record in the status carries it over.
    cluster.restart_controllers().await;
    eventually(
        30,
        "the superseded token to be revoked after the grace",
        || async {
            let status = tokens.get("build").await.ok()?.status?;
            (!sim.is_live(&first) && status.superseded.is_none()).then_some(())
        },
    )
    .await;
    let second = live_token(&cluster, "build").await;
    assert!(sim.is_live(&second), "the current token is untouched");
    cluster.stop().await;
}

#[tokio::test]
async fn a_shadowing_connection_nearer_the_token_never_receives_its_user_token() {
    use kube::api::{Patch, PatchParams};
    let (cluster, sim) = world(Duration::from_secs(3600)).await;
    sim.add_user("ghu_dev_token", "dev");
    sim.grant("ghu_dev_token", "acme", "app", testkit::github::Role::Read);
    // mid is a project between the root and the team; its owner is the attacker.
    cluster.namespace("mid", Some(ROOT)).await;
    cluster.namespace("team", Some("mid")).await;
    cluster
        .secret("team", "dev-token", &[("token", "ghu_dev_token")])
        .await;
    let request = json!({"github": {"repositories": ["app"],
        "userToken": {"name": "dev-token", "key": "token"}}});
    cluster
        .apply(token("team", "build", "acme-github", request))
        .await;
    cluster.token_ready("team", "build", is_ready).await;

    // The owner of mid creates a same-named connection on a server of its own.
    let shadow = HostileServer::start(Behaviour::Record).await.unwrap();
    let evil_key = RsaKey::generate().private_pkcs1_pem();
    cluster
        .secret("mid", "evil-key", &[("private-key.pem", &evil_key)])
        .await;
    let spec = github_app(&shadow.url(), APP_ID, "evil-key");
    cluster.apply(connection("mid", "acme-github", spec)).await;
    // Anything that would renew the token now resolves to the shadow: renew on purpose.
    let tokens = cluster.api::<VcsAuthToken>("team");
    let renew = json!({"metadata": {"annotations": {"patchbay.dev/renew-requested-at": "now"}}});
    (tokens
        .patch("build", &PatchParams::default(), &Patch::Merge(&renew))
        .await)
        .unwrap();
    let refused = cluster
        .token_ready("team", "build", reason("Withdrawn"))
        .await;
    assert!(
        message(&refused).contains("UserTokenServerChanged"),
        "{}",
        message(&refused)
    );
    // Withdrawn stays withdrawn: with nothing left to hold, the next look must not take the
    // token for one that never used its user token anywhere.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = tokens.get("build").await.unwrap();
    assert!(
        message(&still).starts_with("Withdrawn:"),
        "{}",
        message(&still)
    );
    let minting = (shadow.request_lines().into_iter())
        .filter(|line| line.contains("/repos/") || line.contains("/access_tokens"))
        .collect::<Vec<_>>();
    assert!(
        minting.is_empty(),
        "nothing was minted at the shadow: {minting:?}"
    );
    assert!(cluster.operator_running());
    cluster.stop().await;
}
