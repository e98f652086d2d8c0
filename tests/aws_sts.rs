//! The AWS calls of `patchbay::providers::sts` against a real moto server (testkit::moto): STS
//! sessions, AssumeRole with External ID and session tags, ECR logins, IAM key rotation, and
//! the error reasons moto's IAM enforcement mode produces. No Kubernetes here.
//!
//! What moto 5.2.1 does and does not check, as these tests pin it:
//! - Without enforcement it accepts any credentials; GetSessionToken always returns the same
//!   example keys; AssumeRole ignores session tags and never caps durations (not even for role
//!   chaining; patchbay's own `effective_duration` does that).
//! - With enforcement, requests must be signed by keys moto issued; identity policies are
//!   evaluated for the action; AssumeRole of a role moto knows also evaluates the trust policy:
//!   the principal and `StringEquals` conditions, including `sts:ExternalId`. A *wrong* External
//!   ID is denied, a *missing* one is not (real STS denies both).
//! - ECR's authorization token expires on 2015-01-01, in the past; there is no ECR Public.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use patchbay::api::token::SecretFormat;
use patchbay::output::{Credential, render};
use patchbay::providers::sts::{self, AssumeRoleInput, StaticKeys};
use serde_json::{Value, json};
use testkit::moto::{ACCOUNT_ID, DEFAULT_KEY, EcrPublicStub, MotoServer};

const REGION: &str = "eu-west-1";

fn default_keys() -> StaticKeys {
    StaticKeys::new(DEFAULT_KEY.0, DEFAULT_KEY.1)
}

fn sts_client(moto: &MotoServer, keys: &StaticKeys) -> aws_sdk_sts::Client {
    sts::sts_client(REGION, &moto.endpoint(), keys, None)
}

fn iam_admin(moto: &MotoServer) -> aws_sdk_iam::Client {
    sts::iam_client(
        sts::iam_region(REGION),
        &moto.endpoint(),
        &default_keys(),
        None,
    )
}

/// Creates IAM user `name` with an optional inline policy, and returns an access key of it.
async fn user(moto: &MotoServer, name: &str, policy: Option<Value>) -> StaticKeys {
    let iam = iam_admin(moto);
    iam.create_user().user_name(name).send().await.unwrap();
    if let Some(policy) = policy {
        iam.put_user_policy()
            .user_name(name)
            .policy_name("inline")
            .policy_document(policy.to_string())
            .send()
            .await
            .unwrap();
    }
    sts::create_access_key(&iam, Some(name)).await.unwrap()
}

/// Creates role `name` trusting `trust` and returns its ARN.
async fn role(moto: &MotoServer, name: &str, trust: Value) -> String {
    let out = iam_admin(moto)
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .max_session_duration(43200)
        .send()
        .await
        .unwrap();
    out.role().unwrap().arn().to_string()
}

fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}")
}

fn allow(action: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": action, "Resource": "*"}
    ]})
}

fn trust(principal: &str, external_id: Option<&str>) -> Value {
    let mut statement = json!({
        "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole",
    });
    if let Some(id) = external_id {
        statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

fn input(role_arn: &str, external_id: Option<&str>, duration_secs: i32) -> AssumeRoleInput {
    AssumeRoleInput {
        role_arn: role_arn.to_string(),
        session_name: sts::session_name("team-a", "build"),
        external_id: external_id.map(str::to_string),
        duration_secs,
        ..AssumeRoleInput::default()
    }
}

/// Seconds from now until the credential expires.
fn lifetime(credential: &Credential) -> i64 {
    let expires_at = credential.expires_at().expect("an expiry");
    expires_at.as_second() - Timestamp::now().as_second()
}

fn assert_lifetime(credential: &Credential, expected: i64) {
    let left = lifetime(credential);
    assert!(
        (expected - 60..=expected).contains(&left),
        "expected about {expected} s, got {left} s"
    );
}

fn keys_of(credential: &Credential) -> StaticKeys {
    StaticKeys::from_credential(credential).expect("AWS credentials")
}

#[tokio::test]
async fn get_session_token_from_access_keys_returns_temporary_credentials() {
    let Some(moto) = MotoServer::for_test("get_session_token") else {
        return;
    };
    let keys = user(&moto, "builder", None).await;
    let session = sts::get_session_token(&sts_client(&moto, &keys), 900)
        .await
        .unwrap();
    let Credential::Aws {
        session_token,
        region,
        ..
    } = &session
    else {
        panic!("{session:?}")
    };
    assert!(session_token.as_deref().is_some_and(|t| !t.is_empty()));
    assert_eq!(region, REGION);
    assert_lifetime(&session, 900);
    let rendered = render(&session, SecretFormat::AwsCredentials).unwrap();
    let ini = String::from_utf8(rendered.data["credentials"].0.clone()).unwrap();
    assert!(ini.contains("aws_session_token = "), "{ini}");
}

#[tokio::test]
async fn assume_role_with_external_id_and_session_tags_names_role_and_session() {
    let Some(moto) = MotoServer::for_test("assume_role") else {
        return;
    };
    let keys = user(&moto, "patchbay", None).await;
    let role_arn = role(
        &moto,
        "ci-deployer",
        trust(&user_arn("patchbay"), Some("right")),
    )
    .await;
    let user_tags = BTreeMap::from([("cost-center".to_string(), "42".to_string())]);
    let request = AssumeRoleInput {
        tags: sts::session_tags("team-a", "build", &user_tags).unwrap(),
        policy: Some(allow("s3:GetObject").to_string()),
        policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".to_string()],
        ..input(
            &role_arn,
            Some("right"),
            sts::effective_duration(Some(1800), None, false),
        )
    };
    let session = sts::assume_role(&sts_client(&moto, &keys), &request)
        .await
        .unwrap();
    assert_lifetime(&session, 1800);
    let identity = sts::caller_identity(&sts_client(&moto, &keys_of(&session)))
        .await
        .unwrap();
    assert_eq!(identity.account, ACCOUNT_ID);
    assert_eq!(
        identity.arn,
        format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/ci-deployer/team-a.build")
    );
    assert!(identity.user_id.ends_with(":team-a.build"), "{identity:?}");
}

#[tokio::test]
async fn a_trust_policy_requiring_an_external_id_denies_a_wrong_one_with_reason_assume_role_denied()
{
    let Some(moto) = MotoServer::for_test("external_id_denied") else {
        return;
    };
    let keys = user(&moto, "patchbay", Some(allow("sts:AssumeRole"))).await;
    let role_arn = role(
        &moto,
        "guarded",
        trust(&user_arn("patchbay"), Some("right")),
    )
    .await;
    moto.enforce_iam().unwrap();
    let client = sts_client(&moto, &keys);

    let denied = sts::assume_role(&client, &input(&role_arn, Some("wrong"), 900))
        .await
        .unwrap_err();
    assert_eq!(denied.reason(), "AssumeRoleDenied", "{denied}");
    let message = denied.to_string();
    assert!(message.contains("External ID"), "{message}");
    assert!(message.contains(&role_arn), "{message}");
    assert!(!message.contains(&keys.secret_access_key), "{message}");

    // The same request with the right External ID passes: the denial was the External ID.
    sts::assume_role(&client, &input(&role_arn, Some("right"), 900))
        .await
        .unwrap();
    // moto's gap: a condition on a key the request lacks is not evaluated, so leaving the
    // External ID out passes in moto (real STS denies it). patchbay always sends one.
    sts::assume_role(&client, &input(&role_arn, None, 900))
        .await
        .expect("moto 5.2.1 does not deny a missing External ID");
}

#[tokio::test]
async fn a_role_outside_the_trust_policy_principal_is_denied_too() {
    let Some(moto) = MotoServer::for_test("principal_denied") else {
        return;
    };
    let keys = user(&moto, "stranger", Some(allow("sts:AssumeRole"))).await;
    let role_arn = role(&moto, "private", trust(&user_arn("someone-else"), None)).await;
    moto.enforce_iam().unwrap();
    let denied = sts::assume_role(&sts_client(&moto, &keys), &input(&role_arn, None, 900))
        .await
        .unwrap_err();
    assert_eq!(denied.reason(), "AssumeRoleDenied", "{denied}");
}

#[tokio::test]
async fn role_chaining_caps_the_duration_at_one_hour() {
    let Some(moto) = MotoServer::for_test("role_chaining") else {
        return;
    };
    let keys = user(&moto, "patchbay", None).await;
    let first = role(&moto, "hop-1", trust(&user_arn("patchbay"), None)).await;
    let second = role(&moto, "hop-2", trust("*", None)).await;
    let max = Some(14400);

    let direct = sts::effective_duration(Some(7200), max, false);
    assert_eq!(direct, 7200);
    let hop = sts::assume_role(&sts_client(&moto, &keys), &input(&first, None, direct))
        .await
        .unwrap();
    assert_lifetime(&hop, 7200);

    let chained = sts::effective_duration(Some(7200), max, true);
    assert_eq!(chained, 3600);
    let chained_session = sts::assume_role(
        &sts_client(&moto, &keys_of(&hop)),
        &input(&second, None, chained),
    )
    .await
    .unwrap();
    assert_lifetime(&chained_session, 3600);
    let identity = sts::caller_identity(&sts_client(&moto, &keys_of(&chained_session)))
        .await
        .unwrap();
    assert!(
        identity.arn.contains(":assumed-role/hop-2/"),
        "{identity:?}"
    );
}

#[tokio::test]
async fn ecr_private_login_parses_as_a_docker_config_and_reports_moto_s_past_expiry() {
    let Some(moto) = MotoServer::for_test("ecr_login") else {
        return;
    };
    let keys = user(&moto, "puller", None).await;
    let ecr = sts::ecr_client(REGION, &moto.endpoint(), &keys, None);
    let login = sts::ecr_login(&ecr, None).await.unwrap();
    let registry = format!("{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com");
    let Credential::DockerLogin {
        registry: host,
        username,
        password,
        expires_at,
    } = &login
    else {
        panic!("{login:?}")
    };
    assert_eq!(host, &registry);
    assert_eq!(username, "AWS");
    assert_eq!(password, &format!("{ACCOUNT_ID}-auth-token"));
    // moto answers expiresAt = 2015-01-01 (local time of the server): reported as given, so
    // renewal can see it is already past and apply its floor.
    let expires_at = expires_at.expect("moto sends an expiry");
    assert!(expires_at < Timestamp::now(), "{expires_at}");
    assert!(expires_at.to_string().starts_with("201"), "{expires_at}");

    let rendered = render(&login, SecretFormat::DockerConfigJson).unwrap();
    let config: Value = serde_json::from_slice(&rendered.data[".dockerconfigjson"].0).unwrap();
    let auth = &config["auths"][&registry];
    assert_eq!(auth["username"], "AWS");
    assert_eq!(auth["password"].as_str(), Some(password.as_str()));

    let other = "210987654321.dkr.ecr.eu-west-1.amazonaws.com";
    match sts::ecr_login(&ecr, Some(other)).await.unwrap() {
        Credential::DockerLogin { registry, .. } => assert_eq!(registry, other),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ecr_public_login_is_for_public_ecr_aws_and_signed_for_us_east_1() {
    // moto 5.2.1 has no ECR Public: testkit's stub answers in its place.
    let stub = EcrPublicStub::start().await.unwrap();
    let client = sts::ecr_public_client(
        sts::ECR_PUBLIC_REGION,
        &stub.endpoint(),
        &default_keys(),
        None,
    );
    let login = sts::ecr_public_login(&client).await.unwrap();
    assert_eq!(
        login,
        Credential::DockerLogin {
            registry: "public.ecr.aws".into(),
            username: "AWS".into(),
            password: EcrPublicStub::PASSWORD.into(),
            expires_at: Some(Timestamp::from_second(EcrPublicStub::EXPIRES_AT).unwrap()),
        }
    );
    let scopes = stub.scopes();
    assert_eq!(scopes.len(), 1, "{scopes:?}");
    assert!(
        scopes[0].ends_with("us-east-1/ecr-public/aws4_request"),
        "{scopes:?}"
    );
}

#[tokio::test]
async fn iam_access_keys_are_created_and_deleted_for_rotation() {
    let Some(moto) = MotoServer::for_test("key_rotation") else {
        return;
    };
    let rotation = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
        "iam:GetUser", "iam:ListAccessKeys", "iam:CreateAccessKey", "iam:DeleteAccessKey"
    ], "Resource": "*"}]});
    let old = user(&moto, "rotator", Some(rotation)).await;
    moto.enforce_iam().unwrap();
    let iam_as = |keys: &StaticKeys| sts::iam_client("us-east-1", &moto.endpoint(), keys, None);

    assert_eq!(sts::current_user(&iam_as(&old)).await.unwrap(), "rotator");
    let new = sts::create_access_key(&iam_as(&old), None).await.unwrap();
    assert_ne!(new.access_key_id, old.access_key_id);
    let listed = sts::list_access_keys(&iam_as(&new), None).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|(_, active)| *active));
    let identity = sts::caller_identity(&sts_client(&moto, &new))
        .await
        .unwrap();
    assert_eq!(identity.arn, user_arn("rotator"));

    sts::delete_access_key(&iam_as(&new), None, &old.access_key_id)
        .await
        .unwrap();
    let listed = sts::list_access_keys(&iam_as(&new), None).await.unwrap();
    assert_eq!(listed, vec![(new.access_key_id.clone(), true)]);
    let gone = sts::caller_identity(&sts_client(&moto, &old))
        .await
        .unwrap_err();
    assert_eq!(gone.reason(), "InvalidClientTokenId", "{gone}");
}

#[tokio::test]
async fn get_caller_identity_with_bad_keys_in_enforcement_mode_names_the_bad_half() {
    let Some(moto) = MotoServer::for_test("bad_keys") else {
        return;
    };
    let good = user(&moto, "someone", None).await;
    moto.enforce_iam().unwrap();

    let unknown = StaticKeys::new("AKIAUNKNOWNUNKNOWN00", good.secret_access_key.clone());
    let e = sts::caller_identity(&sts_client(&moto, &unknown))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "InvalidClientTokenId", "{e}");
    assert!(e.to_string().contains("access key ID is not valid"), "{e}");

    let wrong_secret = StaticKeys::new(good.access_key_id.clone(), "x".repeat(40));
    let e = sts::caller_identity(&sts_client(&moto, &wrong_secret))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "SignatureDoesNotMatch", "{e}");
    assert!(!e.to_string().contains(&"x".repeat(40)), "{e}");

    // A user without the permission is AccessDenied, not a credential problem.
    let e = sts::create_access_key(
        &sts::iam_client("us-east-1", &moto.endpoint(), &good, None),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason(), "AccessDenied", "{e}");

    let identity = sts::caller_identity(&sts_client(&moto, &good))
        .await
        .unwrap();
    assert_eq!(identity.arn, user_arn("someone"));
}

#[tokio::test]
async fn a_closed_endpoint_is_unreachable_within_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = sts::sts_client(
        REGION,
        &format!("http://127.0.0.1:{port}"),
        &default_keys(),
        None,
    );
    let started = std::time::Instant::now();
    let e = sts::caller_identity(&client).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable", "{e}");
    assert!(e.is_transient());
    assert!(started.elapsed() < sts::OPERATION_TIMEOUT + Duration::from_secs(5));
}
