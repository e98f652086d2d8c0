//! End to end: AWS STS credentials and ECR logins minted into Secrets by the real controllers,
//! against a real kube-apiserver (tests/support/cluster.rs) and moto's server (testkit::moto). Every connection
//! points its `stsEndpoint` (ECR: `endpoint`) at moto.
//!
//! moto's limits shape some assertions (see tests/aws_sts.rs): GetSessionToken always returns
//! the same example keys, and ECR's authorization token expires in 2015. STS's minimum
//! duration (900 s) makes time-based renewal too slow to wait for, so renewal is exercised
//! through `patchbay.dev/renew-requested-at`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use patchbay::api::{Condition, ConditionStatus, Connection, VcsAuthToken};
use patchbay::providers::sts::{self, StaticKeys};
use serde_json::{Value, json};
use support::cluster::{Cluster, ROOT, eventually, reason};
use testkit::moto::{ACCOUNT_ID, DEFAULT_KEY, EcrPublicStub, MotoServer};

const REGION: &str = "eu-west-1";

/// ci → platform → team-a, and moto.
struct World {
    cluster: Cluster,
    moto: MotoServer,
}

async fn world(test: &str) -> Option<World> {
    world_with(test, false).await
}

async fn world_with(test: &str, allow_default_chain: bool) -> Option<World> {
    let moto = MotoServer::for_test(test)?;
    let cluster = Cluster::start_with(allow_default_chain).await;
    cluster.namespace("platform", Some(ROOT)).await;
    cluster.namespace("team-a", Some("platform")).await;
    Some(World { cluster, moto })
}

fn iam(w: &World) -> aws_sdk_iam::Client {
    let admin = StaticKeys::new(DEFAULT_KEY.0, DEFAULT_KEY.1);
    sts::iam_client(sts::iam_region(REGION), &w.moto.endpoint(), &admin, None)
}

/// IAM user `name` allowed `actions`, with a fresh access key.
async fn iam_user(w: &World, name: &str, actions: &[&str]) -> StaticKeys {
    let iam = iam(w);
    iam.create_user().user_name(name).send().await.unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": "*"}
    ]});
    iam.put_user_policy()
        .user_name(name)
        .policy_name("inline")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    sts::create_access_key(&iam, Some(name)).await.unwrap()
}

/// Role `name` trusting `principal` (with an External ID condition when given); its ARN.
async fn iam_role(w: &World, name: &str, principal: &str, external_id: Option<&str>) -> String {
    let mut statement = json!({"Effect": "Allow", "Principal": {"AWS": principal},
        "Action": ["sts:AssumeRole", "sts:TagSession"]});
    if let Some(id) = external_id {
        statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
    }
    let trust = json!({"Version": "2012-10-17", "Statement": [statement]});
    let out = iam(w)
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .max_session_duration(43200)
        .send()
        .await
        .unwrap();
    out.role().unwrap().arn().to_string()
}

/// Stores `keys` in Secret `name` of `namespace` and returns the accessKeys block for it.
async fn access_keys(w: &World, namespace: &str, name: &str, keys: &StaticKeys) -> Value {
    let data = [
        ("id", keys.access_key_id.as_str()),
        ("secret", keys.secret_access_key.as_str()),
    ];
    w.cluster.secret(namespace, name, &data).await;
    json!({"accessKeyId": {"name": name, "key": "id"},
           "secretAccessKey": {"name": name, "key": "secret"}})
}

async fn connection(w: &World, namespace: &str, name: &str, spec: Value) {
    w.cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }))
        .await;
}

/// An aws connection block at moto with `credentials`.
fn aws(w: &World, credentials: Value) -> Value {
    json!({"region": REGION, "stsEndpoint": w.moto.endpoint(), "credentials": credentials})
}

fn token(name: &str, connection: &str, request: Value) -> Value {
    let mut t = json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"connection": connection},
    });
    let (block, body) = request.as_object().unwrap().iter().next().unwrap();
    t["spec"][block] = body.clone();
    t
}

fn is_ready(c: &Condition) -> bool {
    c.status == ConditionStatus::True
}

fn ready_message(t: &VcsAuthToken) -> String {
    let status = t.status.as_ref().unwrap();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    ready.unwrap().message.clone()
}

/// Seconds between `status.issuedAt` and `status.expiresAt`.
fn lifetime(t: &VcsAuthToken) -> i64 {
    let s = t.status.as_ref().unwrap();
    let (issued, expires) = (
        s.issued_at.as_ref().unwrap(),
        s.expires_at.as_ref().unwrap(),
    );
    expires.0.as_second() - issued.0.as_second()
}

/// Whether a lifetime is `expected` seconds: `issuedAt` is taken before the STS call and the
/// expiry counts from STS's answer (moto's clock, whole seconds), so it may read a few seconds
/// longer, never shorter.
fn about(lifetime: i64, expected: i64) -> bool {
    (expected..=expected + 10).contains(&lifetime)
}

async fn data(w: &World, name: &str) -> BTreeMap<String, String> {
    let found = w.cluster.secret_text("team-a", name).await;
    found.unwrap_or_default()
}

/// The keys in the `credentials` INI file of a Secret.
fn ini_keys(ini: &str) -> StaticKeys {
    let value = |key: &str| {
        ini.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().strip_prefix('='))
            .map(|v| v.trim().to_string())
    };
    StaticKeys {
        access_key_id: value("aws_access_key_id").unwrap(),
        secret_access_key: value("aws_secret_access_key").unwrap(),
        session_token: value("aws_session_token"),
    }
}

async fn whoami(w: &World, keys: &StaticKeys) -> sts::Identity {
    let client = sts::sts_client(REGION, &w.moto.endpoint(), keys, None);
    sts::caller_identity(&client).await.unwrap()
}

/// Waits for Connection `namespace/name`'s Verified condition to satisfy `check`.
async fn verified(
    w: &World,
    namespace: &str,
    name: &str,
    check: fn(&Condition) -> bool,
) -> Condition {
    w.cluster.connection_verified(namespace, name, check).await
}

async fn revision(w: &World, name: &str) -> i64 {
    let api: Api<VcsAuthToken> = w.cluster.api("team-a");
    let t = api.get(name).await.unwrap();
    t.status.map(|s| s.revision).unwrap_or_default()
}

async fn renew(w: &World, name: &str, connection: &str, request: Value, value: &str) {
    let mut t = token(name, connection, request);
    t["metadata"]["annotations"] = json!({"patchbay.dev/renew-requested-at": value});
    w.cluster.apply(t).await;
}

#[tokio::test]
async fn access_keys_give_session_credentials_that_work_and_renew_once_on_request() {
    let Some(w) = world("aws_session_credentials").await else {
        return;
    };
    let keys = iam_user(&w, "builder", &["sts:GetSessionToken"]).await;
    let creds = json!({"accessKeys": access_keys(&w, ROOT, "aws-keys", &keys).await});
    let spec = json!({"availableForSubProjects": true, "aws": aws(&w, creds)});
    connection(&w, ROOT, "aws", spec).await;
    let request = json!({"aws": {"durationSeconds": 900}});
    w.cluster
        .apply(token("build", "aws", request.clone()))
        .await;

    let t = w.cluster.token_ready("team-a", "build", is_ready).await;
    assert_eq!(t.status.as_ref().unwrap().revision, 1);
    assert!(about(lifetime(&t), 900), "{}", lifetime(&t));
    let d = data(&w, "build").await;
    let minted = ini_keys(&d["credentials"]);
    assert_eq!(minted.access_key_id, d["AWS_ACCESS_KEY_ID"]);
    assert_eq!(minted.secret_access_key, d["AWS_SECRET_ACCESS_KEY"]);
    assert_eq!(
        minted.session_token.as_deref(),
        Some(d["AWS_SESSION_TOKEN"].as_str())
    );
    assert_eq!(d["AWS_REGION"], REGION);
    assert!(d.contains_key("expiration"));
    assert_ne!(
        minted.access_key_id, keys.access_key_id,
        "session keys, not the user's"
    );
    assert_eq!(whoami(&w, &minted).await.account, ACCOUNT_ID);
    let status = serde_json::to_string(&t.status).unwrap();
    assert!(
        !status.contains(&minted.secret_access_key) && !status.contains(&keys.secret_access_key)
    );

    let v = verified(&w, ROOT, "aws", is_ready).await;
    let user = format!("arn:aws:iam::{ACCOUNT_ID}:user/builder");
    assert_eq!(v.message, format!("account {ACCOUNT_ID}, arn {user}"));

    renew(&w, "build", "aws", request, "2026-01-01T00:00:00Z").await;
    // moto hands out the same session credentials every time: the status must still record
    // the second mint (once, a status written from a stale cache dropped it).
    eventually(30, "a renewal", || async {
        (revision(&w, "build").await == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        revision(&w, "build").await,
        2,
        "exactly one mint per request"
    );

    // A restarted operator finds the Secret current: no new mint.
    let mut w = w;
    w.cluster.restart_controllers().await;
    let key = &format!("VcsAuthToken {}/build", w.cluster.ns("team-a"));
    eventually(20, "a reconcile after the restart", || async {
        (w.cluster.reconciles(key) > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(revision(&w, "build").await, 2, "no mint after a restart");
}

/// The External ID patchbay generated for Connection `namespace/name`.
async fn generated_external_id(w: &World, namespace: &str, name: &str) -> String {
    let api: Api<Connection> = w.cluster.api(namespace);
    eventually(30, "the generated External ID", || {
        let api = api.clone();
        async move { api.get(name).await.ok()?.status?.external_id }
    })
    .await
}

#[tokio::test]
async fn assume_role_through_a_parent_source_with_external_id_and_namespace_session_tags() {
    let Some(w) = world("aws_assume_role").await else {
        return;
    };
    let keys = iam_user(&w, "patchbay", &["sts:AssumeRole", "sts:TagSession"]).await;
    let user = format!("arn:aws:iam::{ACCOUNT_ID}:user/patchbay");
    let role = format!("arn:aws:iam::{ACCOUNT_ID}:role/ci-deployer");
    let creds = json!({"accessKeys": access_keys(&w, ROOT, "aws-keys", &keys).await});
    let mut source = aws(&w, creds);
    source["availableForBuildSteps"] = json!(false);
    // The source lends its identity to the ci-* roles, and to nothing else.
    source["allowedRoleArns"] = json!([format!("arn:aws:iam::{ACCOUNT_ID}:role/ci-*")]);
    let spec = json!({"availableForSubProjects": true, "aws": source});
    connection(&w, ROOT, "aws-source", spec).await;
    let role_creds = |arn: &str| json!({"iamRole": {"connection": "aws-source", "roleArn": arn}});
    let mut deployer = aws(&w, role_creds(&role));
    deployer["allowedRoleArns"] = json!([format!("arn:aws:iam::{ACCOUNT_ID}:role/ci-*")]);
    connection(&w, "team-a", "deployer", json!({"aws": deployer})).await;
    // The role trusts the deployer's generated External ID, as its owner set it up.
    let external_id = generated_external_id(&w, "team-a", "deployer").await;
    iam_role(&w, "ci-deployer", &user, Some(&external_id)).await;
    // Another connection of the tenant, for the same role: its own External ID does not fit.
    let intruder = aws(&w, role_creds(&role));
    connection(&w, "team-a", "intruder", json!({"aws": intruder})).await;
    w.moto.enforce_iam().unwrap();
    // The live checks ran before the role existed: ask for them again.
    let connections: Api<Connection> = w.cluster.api("team-a");
    let again =
        json!({"metadata": {"annotations": {"patchbay.dev/verify-requested-at": "role-created"}}});
    for name in ["deployer", "intruder"] {
        (connections
            .patch(name, &PatchParams::default(), &Patch::Merge(&again))
            .await)
            .unwrap();
    }

    let tags = json!({"aws": {"sessionTags": {"cost-center": "42"}}});
    w.cluster.apply(token("build", "deployer", tags)).await;
    w.cluster
        .apply(token("sneaky", "intruder", json!({"aws": {}})))
        .await;
    let other_role = json!({"aws": {"roleArn": format!("arn:aws:iam::{ACCOUNT_ID}:role/admin")}});
    w.cluster
        .apply(token("escalate", "deployer", other_role))
        .await;

    w.cluster.token_ready("team-a", "build", is_ready).await;
    let minted = ini_keys(&data(&w, "build").await["credentials"]);
    let who = whoami(&w, &minted).await;
    let session = format!(
        "arn:aws:sts::{ACCOUNT_ID}:assumed-role/ci-deployer/{}.build",
        w.cluster.ns("team-a")
    );
    assert_eq!(who.arn, session);

    let denied = w
        .cluster
        .token_ready("team-a", "sneaky", reason("AssumeRoleDenied"))
        .await;
    let message = ready_message(&denied);
    assert!(
        message.contains("trust policy") && message.contains("External ID"),
        "{message}"
    );
    assert!(!message.contains(&keys.secret_access_key), "{message}");
    let v = verified(&w, "team-a", "intruder", |c| {
        c.status == ConditionStatus::False
    })
    .await;
    assert_eq!(v.reason, "AssumeRoleDenied", "{}", v.message);
    let v = verified(&w, "team-a", "deployer", is_ready).await;
    assert!(
        v.message.contains("assumed-role/ci-deployer/"),
        "{}",
        v.message
    );

    let refused = w
        .cluster
        .token_ready("team-a", "escalate", reason("RoleNotAllowed"))
        .await;
    assert!(
        ready_message(&refused).contains("role/admin"),
        "{}",
        ready_message(&refused)
    );
    assert!(data(&w, "escalate").await.is_empty());
}

#[tokio::test]
async fn role_chaining_is_capped_at_one_hour() {
    let Some(w) = world("aws_role_chaining").await else {
        return;
    };
    let keys = iam_user(&w, "patchbay", &["sts:AssumeRole"]).await;
    let user = format!("arn:aws:iam::{ACCOUNT_ID}:user/patchbay");
    let hop1 = iam_role(&w, "hop-1", &user, None).await;
    let hop2 = iam_role(&w, "hop-2", "*", None).await;
    let creds = json!({"accessKeys": access_keys(&w, "team-a", "aws-keys", &keys).await});
    connection(&w, "team-a", "base", json!({"aws": aws(&w, creds)})).await;
    for (name, source, arn) in [("hop1", "base", &hop1), ("hop2", "hop1", &hop2)] {
        let creds = json!({"iamRole": {"connection": source, "roleArn": arn}});
        let mut spec = aws(&w, creds);
        spec["maxSessionDuration"] = json!(14400);
        connection(&w, "team-a", name, json!({"aws": spec})).await;
    }
    let long = json!({"aws": {"durationSeconds": 7200}});
    w.cluster.apply(token("direct", "hop1", long.clone())).await;
    w.cluster.apply(token("chained", "hop2", long)).await;

    let direct = w.cluster.token_ready("team-a", "direct", is_ready).await;
    assert!(about(lifetime(&direct), 7200), "{}", lifetime(&direct));
    let chained = w.cluster.token_ready("team-a", "chained", is_ready).await;
    assert!(about(lifetime(&chained), 3600), "{}", lifetime(&chained));
    let who = whoami(&w, &ini_keys(&data(&w, "chained").await["credentials"])).await;
    assert!(
        who.arn.contains(&format!(
            ":assumed-role/hop-2/{}.chained",
            w.cluster.ns("team-a")
        )),
        "{who:?}"
    );
}

#[tokio::test]
async fn ecr_private_login_parses_and_moto_s_past_expiry_does_not_loop() {
    let Some(w) = world("aws_ecr_private").await else {
        return;
    };
    let keys = iam_user(&w, "puller", &["ecr:GetAuthorizationToken"]).await;
    let creds = json!({"accessKeys": access_keys(&w, "team-a", "ecr-keys", &keys).await});
    let ecr = json!({"region": REGION, "endpoint": w.moto.endpoint(), "credentials": creds});
    connection(&w, "team-a", "ecr", json!({"ecr": ecr})).await;
    w.cluster
        .apply(token("pull", "ecr", json!({"ecr": {}})))
        .await;

    let t = w.cluster.token_ready("team-a", "pull", is_ready).await;
    assert!(
        ready_message(&t).contains("expires at 201"),
        "{}",
        ready_message(&t)
    );
    let api: Api<Secret> = w.cluster.api("team-a");
    let secret = api.get("pull").await.unwrap();
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    let config: Value = serde_json::from_str(&data(&w, "pull").await[".dockerconfigjson"]).unwrap();
    let registry = format!("{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com");
    assert_eq!(config["auths"][&registry]["username"], "AWS", "{config}");
    let v = verified(&w, "team-a", "ecr", is_ready).await;
    assert!(v.message.contains(&registry), "{}", v.message);

    // The credential is "expired" from the start: the 60 s floor keeps renewal from looping.
    let first = revision(&w, "pull").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = revision(&w, "pull").await;
    assert!(later - first <= 1, "{first} -> {later} mints in 5 s");
}

#[tokio::test]
async fn ecr_public_login_is_for_public_ecr_aws() {
    let Some(w) = world("aws_ecr_public").await else {
        return;
    };
    let stub = EcrPublicStub::start().await.unwrap();
    let keys = iam_user(&w, "puller", &["ecr-public:GetAuthorizationToken"]).await;
    let creds = json!({"accessKeys": access_keys(&w, "team-a", "ecr-keys", &keys).await});
    let ecr =
        json!({"repositoryType": "public", "endpoint": stub.endpoint(), "credentials": creds});
    connection(&w, "team-a", "ecr-public", json!({"ecr": ecr})).await;
    w.cluster
        .apply(token("pull", "ecr-public", json!({"ecr": {}})))
        .await;

    w.cluster.token_ready("team-a", "pull", is_ready).await;
    let config: Value = serde_json::from_str(&data(&w, "pull").await[".dockerconfigjson"]).unwrap();
    let auth = &config["auths"]["public.ecr.aws"];
    assert_eq!(auth["username"], "AWS", "{config}");
    assert_eq!(auth["password"], EcrPublicStub::PASSWORD);
    let scopes = stub.scopes();
    assert!(
        scopes
            .iter()
            .all(|s| s.ends_with("us-east-1/ecr-public/aws4_request")),
        "{scopes:?}"
    );
}

#[tokio::test]
async fn static_keys_are_projected_without_expiry_and_kept() {
    let Some(w) = world("aws_static_keys").await else {
        return;
    };
    let keys = iam_user(&w, "legacy", &["sts:GetCallerIdentity"]).await;
    let mut creds = json!({"accessKeys": access_keys(&w, "team-a", "aws-keys", &keys).await});
    creds["accessKeys"]["useSessionCredentials"] = json!(false);
    connection(&w, "team-a", "static", json!({"aws": aws(&w, creds)})).await;
    w.cluster
        .apply(token("build", "static", json!({"aws": {}})))
        .await;

    let t = w.cluster.token_ready("team-a", "build", is_ready).await;
    assert!(
        ready_message(&t).contains("long-lived static keys"),
        "{}",
        ready_message(&t)
    );
    let status = t.status.as_ref().unwrap();
    assert!(status.expires_at.is_none() && status.renew_at.is_none());
    let d = data(&w, "build").await;
    assert_eq!(d["AWS_ACCESS_KEY_ID"], keys.access_key_id);
    assert!(
        !d.contains_key("AWS_SESSION_TOKEN") && !d.contains_key("expiration"),
        "{:?}",
        d.keys()
    );
    let api: Api<Secret> = w.cluster.api("team-a");
    let annotations = api
        .get("build")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    assert!(!annotations.contains_key("patchbay.dev/expires-at"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        revision(&w, "build").await,
        1,
        "static keys are not projected again"
    );
}

#[tokio::test]
async fn default_chain_is_refused_without_the_operator_flag() {
    let cluster = Cluster::start().await;
    cluster.namespace("team-a", Some(ROOT)).await;
    let spec = json!({"aws": {"region": REGION, "credentials": {"defaultChain": {}}}});
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "mine", "namespace": "team-a"}, "spec": spec,
        }))
        .await;
    cluster
        .apply(token("build", "mine", json!({"aws": {}})))
        .await;
    // "has not been checked yet" first when the token is faster than its connection, then the
    // connection's own reason.
    cluster
        .token_ready("team-a", "build", |c| {
            c.reason == "ConnectionNotReady"
                && c.message.contains("--allow-default-credential-chain")
        })
        .await;
    assert!(cluster.secret_text("team-a", "build").await.is_none());
}

/// Set in the child process of the default-chain test: moto's endpoint.
const CHILD_ENDPOINT: &str = "PATCHBAY_TEST_DEFAULT_CHAIN_ENDPOINT";

#[tokio::test]
async fn default_chain_with_the_flag_signs_with_the_operator_s_identity() {
    if let Ok(endpoint) = std::env::var(CHILD_ENDPOINT) {
        return default_chain_child(&endpoint).await;
    }
    let Some(w) = world("aws_default_chain").await else {
        return;
    };
    // The operator's identity comes from its environment, which a test may not change in its
    // own process: this test runs again as a child process with the user's keys there.
    let keys = iam_user(&w, "operator", &["sts:GetSessionToken"]).await;
    let test = "default_chain_with_the_flag_signs_with_the_operator_s_identity";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(CHILD_ENDPOINT, w.moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", &keys.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &keys.secret_access_key)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{errors}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(!text.contains(&keys.secret_access_key), "{text}");
}

/// The child half: the operator (this process) finds the user's keys in its environment.
async fn default_chain_child(endpoint: &str) {
    let cluster = Cluster::start_with(true).await;
    cluster.namespace("team-a", Some(ROOT)).await;
    let aws =
        json!({"region": REGION, "stsEndpoint": endpoint, "credentials": {"defaultChain": {}}});
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "operator", "namespace": "team-a"}, "spec": {"aws": aws},
        }))
        .await;
    cluster
        .apply(token("build", "operator", json!({"aws": {}})))
        .await;
    let t = cluster.token_ready("team-a", "build", is_ready).await;
    let d = cluster.secret_text("team-a", "build").await.unwrap();
    // Long-lived keys found by the chain are not handed out: session credentials are.
    let operator_key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    assert_ne!(d["AWS_ACCESS_KEY_ID"], operator_key);
    assert!(d.contains_key("AWS_SESSION_TOKEN"));
    assert!(about(lifetime(&t), 3600), "{}", lifetime(&t));
    let api: Api<Connection> = cluster.api("team-a");
    let message = eventually(30, "Verified of the operator's connection", || async {
        let c = api.get_opt("operator").await.ok()??;
        let conditions = c.status?.conditions;
        let v = conditions
            .into_iter()
            .find(|c| c.type_ == "Verified" && is_ready(c))?;
        Some(v.message)
    })
    .await;
    let user = format!("arn:aws:iam::{ACCOUNT_ID}:user/operator");
    assert_eq!(message, format!("account {ACCOUNT_ID}, arn {user}"));
}

/// The access key IDs IAM holds for `user`.
async fn key_ids(w: &World, user: &str) -> Vec<String> {
    sts::list_access_keys(&iam(w), Some(user))
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn rotating_a_key_writes_the_new_one_and_deletes_the_old_after_the_retention() {
    let Some(w) = world("rotation").await else {
        return;
    };
    let keys = iam_user(&w, "rotor", &["iam:*", "sts:*"]).await;
    let mut block = access_keys(&w, ROOT, "rotor-keys", &keys).await;
    block["oldKeyRetention"] = json!("6s");
    connection(
        &w,
        ROOT,
        "rotor",
        json!({"aws": aws(&w, json!({"accessKeys": block}))}),
    )
    .await;
    w.cluster.connection_ready(ROOT, "rotor", is_ready).await;
    let api: Api<Connection> = w.cluster.api(ROOT);
    let ask = |value: &str| json!({"metadata": {"annotations": {"patchbay.dev/rotate-key-requested-at": value}}});

    // Without the label that allows writing the Secret, nothing is created.
    api.patch("rotor", &PatchParams::default(), &Patch::Merge(&ask("1")))
        .await
        .unwrap();
    let refused = eventually(20, "the refusal", || {
        let api = api.clone();
        async move {
            let r = api.get("rotor").await.ok()?.status?.key_rotation?;
            (r.requested.as_deref() == Some("1")).then_some(r)
        }
    })
    .await;
    assert!(
        refused
            .message
            .unwrap()
            .contains("patchbay.dev/allow-key-rotation")
    );
    assert_eq!(
        key_ids(&w, "rotor").await,
        std::slice::from_ref(&keys.access_key_id)
    );

    // With it, a new key is written into the Secret and both keys exist for the retention.
    let secrets: Api<Secret> = w.cluster.api(ROOT);
    let label = json!({"metadata": {"labels": {"patchbay.dev/allow-key-rotation": "true"}}});
    secrets
        .patch("rotor-keys", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    api.patch("rotor", &PatchParams::default(), &Patch::Merge(&ask("2")))
        .await
        .unwrap();
    let rotated = eventually(20, "the rotation", || {
        let api = api.clone();
        async move {
            let r = api.get("rotor").await.ok()?.status?.key_rotation?;
            (r.requested.as_deref() == Some("2") && r.rotated_at.is_some()).then_some(r)
        }
    })
    .await;
    assert_eq!(
        rotated.previous_access_key_id.as_deref(),
        Some(keys.access_key_id.as_str())
    );
    let stored = w.cluster.secret_text(ROOT, "rotor-keys").await.unwrap();
    assert_ne!(stored["id"], keys.access_key_id);
    let both = key_ids(&w, "rotor").await;
    assert_eq!(
        both.len(),
        2,
        "the old key stays for the retention: {both:?}"
    );
    // The new key works: the connection is still Ready and Verified with it.
    w.cluster.connection_ready(ROOT, "rotor", is_ready).await;

    let deleted = eventually(30, "the old key to be deleted", || {
        let api = api.clone();
        async move {
            let r = api.get("rotor").await.ok()?.status?.key_rotation?;
            r.previous_deleted_at.is_some().then_some(r)
        }
    })
    .await;
    assert!(deleted.message.unwrap().contains("deleted"));
    let (rotated_at, deleted_at) = (
        rotated.rotated_at.unwrap().0,
        deleted.previous_deleted_at.unwrap().0,
    );
    assert!(
        deleted_at.duration_since(rotated_at) >= k8s_openapi::jiff::SignedDuration::from_secs(6),
        "kept from {rotated_at} to {deleted_at}"
    );
    assert_eq!(key_ids(&w, "rotor").await, [stored["id"].clone()]);
}
