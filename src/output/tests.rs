//! Tests of the output Secret, part by part (rendering, the credential, building the Secret,
//! ownership), on fixtures they share.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;
use crate::api::VcsAuthToken;
use crate::api::token::SecretFormat;

const GHS: &str = "ghs_SuperSecretInstallationToken0001";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AWS_SESSION: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN";

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn github() -> Credential {
    Credential::GithubToken {
        token: GHS.into(),
        expires_at: at(1_767_225_600),
        server_host: "github.com".into(),
    }
}

fn aws(session: bool) -> Credential {
    Credential::Aws {
        access_key_id: "ASIAEXAMPLE".into(),
        secret_access_key: AWS_SECRET.into(),
        session_token: session.then(|| AWS_SESSION.into()),
        region: "eu-west-1".into(),
        expires_at: session.then(|| at(1_767_225_600)),
    }
}

fn docker() -> Credential {
    Credential::DockerLogin {
        registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into(),
        username: "AzureDiamond".into(),
        password: "hunter2".into(),
        expires_at: None,
    }
}

const NPM_TOKEN: &str = "npm_SecretTokenForTheRegistry01";
const XOXB: &str = "xoxb-1111-2222-SecretBotToken";
const PAT: &str = "adopat+secret/52charsofbase32xx";
const P4_PASSWORD: &str = "p4-secret-password";
const REGISTRY_JWT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjaSJ9.registry-secret-signature";

fn npm(scope: Option<&str>, token: bool) -> Credential {
    Credential::Npm {
        registry_url: "https://npm.acme.example/repo/".into(),
        scope: scope.map(str::to_owned),
        token: token.then(|| NPM_TOKEN.into()),
    }
}

fn slack() -> Credential {
    Credential::SlackBot { token: XOXB.into() }
}

fn azure() -> Credential {
    Credential::AzureDevOpsPat {
        token: PAT.into(),
        server_url: "https://dev.azure.com/acme".into(),
    }
}

const OAUTH_TOKEN: &str = "glpat-oauth+access/token";

fn oauth(username: Option<&'static str>) -> Credential {
    let token = match username {
        Some(_) => OAUTH_TOKEN.to_owned(),
        None => format!("{OAUTH_TOKEN}-bearer"),
    };
    Credential::OAuth {
        access_token: token,
        expires_at: at(1_767_225_600),
        username,
        server_url: "https://gitlab.acme.example/gitlab".into(),
        variable: None,
    }
}

fn perforce() -> Credential {
    Credential::Perforce {
        port: "ssl:p4.acme.example:1666".into(),
        user: "p4admin".into(),
        password: P4_PASSWORD.into(),
    }
}

fn registry_token() -> Credential {
    Credential::RegistryToken {
        registry: "registry.acme.example:5000".into(),
        token: REGISTRY_JWT.into(),
        expires_at: at(1_767_225_600),
    }
}

/// Every credential kind, for the properties all of them share.
fn every_credential() -> Vec<Credential> {
    vec![
        github(),
        aws(true),
        aws(false),
        docker(),
        registry_token(),
        npm(None, true),
        npm(Some("@acme"), false),
        slack(),
        azure(),
        oauth(Some("oauth2")),
        oauth(None),
        perforce(),
    ]
}

fn text(rendered: &Rendered, key: &str) -> String {
    String::from_utf8(rendered.data[key].0.clone()).unwrap()
}

fn keys(rendered: &Rendered) -> Vec<&str> {
    rendered.data.keys().map(String::as_str).collect()
}

/// A token `build` in `team-a` with uid `uid-1`, its `spec.secret` from JSON.
fn token(secret: serde_json::Value) -> VcsAuthToken {
    let mut token: VcsAuthToken = serde_json::from_value(json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "build", "namespace": "team-a", "uid": "uid-1"},
        "spec": {"connection": "acme-github", "github": {"repositories": ["app"]}},
    }))
    .unwrap();
    if !secret.is_null() {
        token.spec.secret = Some(serde_json::from_value(secret).unwrap());
    }
    token
}

fn inputs(token: &VcsAuthToken) -> SecretInputs<'_> {
    SecretInputs {
        token,
        rendered: render(&github(), SecretFormat::BasicAuth).unwrap(),
        connection: ("ci", "acme-github"),
        request_hash: "req-1",
        connection_hash: "conn-1",
        issued_at: at(1_767_222_000),
        expires_at: Some(at(1_767_225_600)),
        renew_requested_at: None,
        token_id: "sha256:0123456789abcdef",
    }
}

fn our_secret(policy: &str) -> Secret {
    let token = token(json!({"deletionPolicy": policy}));
    build_secret(inputs(&token))
}

fn controller_ref(kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn foreign_reason(secret: &Secret) -> String {
    match ownership(Some(secret), &token(json!(null))) {
        Ownership::Foreign(why) => why,
        other => panic!("expected Foreign, got {other:?}"),
    }
}

#[test]
fn github_basic_auth_writes_username_password_token_and_expiry() {
    let r = render(&github(), SecretFormat::BasicAuth).unwrap();
    assert_eq!(r.type_, "kubernetes.io/basic-auth");
    assert_eq!(keys(&r), ["expires_at", "password", "token", "username"]);
    assert_eq!(text(&r, "username"), "x-access-token");
    assert_eq!(text(&r, "password"), GHS);
    assert_eq!(text(&r, "token"), GHS);
    assert_eq!(text(&r, "expires_at"), "2026-01-01T00:00:00Z");
}

#[test]
fn github_git_credentials_writes_one_credential_line_for_the_host() {
    let ghe = Credential::GithubToken {
        token: GHS.into(),
        expires_at: at(0),
        server_host: "ghe.example.com".into(),
    };
    let r = render(&ghe, SecretFormat::GitCredentials).unwrap();
    assert_eq!(r.type_, "Opaque");
    assert_eq!(keys(&r), [".git-credentials", "expires_at", "token"]);
    let line = text(&r, ".git-credentials");
    assert_eq!(
        line,
        format!("https://x-access-token:{GHS}@ghe.example.com\n")
    );
    let url = url::Url::parse(line.trim_end()).unwrap();
    assert_eq!(
        (url.username(), url.password()),
        ("x-access-token", Some(GHS))
    );
}

#[test]
fn github_opaque_writes_only_token_and_expiry() {
    let r = render(&github(), SecretFormat::Opaque).unwrap();
    assert_eq!(r.type_, "Opaque");
    assert_eq!(keys(&r), ["expires_at", "token"]);
}

/// `section -> key -> value` from an AWS shared credentials file.
fn parse_ini(ini: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections = BTreeMap::new();
    let mut current = String::new();
    for line in ini.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            sections
                .entry(current.clone())
                .or_insert_with(BTreeMap::new);
        } else {
            let (k, v) = line.split_once('=').expect("key = value");
            let section = sections
                .get_mut(&current)
                .expect("a key before any section");
            section.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    sections
}

#[test]
fn aws_session_credentials_write_env_keys_an_ini_file_and_expiration() {
    for format in [SecretFormat::AwsCredentials, SecretFormat::Opaque] {
        let r = render(&aws(true), format).unwrap();
        assert_eq!(r.type_, "Opaque");
        assert_eq!(
            keys(&r),
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_REGION",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "credentials",
                "expiration"
            ]
        );
        assert_eq!(text(&r, "AWS_SECRET_ACCESS_KEY"), AWS_SECRET);
        assert_eq!(text(&r, "AWS_SESSION_TOKEN"), AWS_SESSION);
        assert_eq!(text(&r, "expiration"), "2026-01-01T00:00:00Z");
        let ini = parse_ini(&text(&r, "credentials"));
        let default = &ini["default"];
        assert_eq!(ini.len(), 1);
        assert_eq!(default["aws_access_key_id"], "ASIAEXAMPLE");
        assert_eq!(default["aws_secret_access_key"], AWS_SECRET);
        assert_eq!(default["aws_session_token"], AWS_SESSION);
        assert_eq!(default["region"], "eu-west-1");
    }
}

#[test]
fn static_aws_keys_have_no_session_token_or_expiration() {
    let r = render(&aws(false), SecretFormat::AwsCredentials).unwrap();
    assert_eq!(
        keys(&r),
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_REGION",
            "AWS_SECRET_ACCESS_KEY",
            "credentials"
        ]
    );
    let ini = parse_ini(&text(&r, "credentials"));
    assert!(!ini["default"].contains_key("aws_session_token"));
    assert_eq!(ini["default"].len(), 3);
}

#[test]
fn docker_logins_write_a_dockerconfigjson_with_base64_auth() {
    let r = render(&docker(), SecretFormat::DockerConfigJson).unwrap();
    assert_eq!(r.type_, "kubernetes.io/dockerconfigjson");
    assert_eq!(keys(&r), [".dockerconfigjson"]);
    let config: serde_json::Value = serde_json::from_str(&text(&r, ".dockerconfigjson")).unwrap();
    assert_eq!(
        config,
        json!({"auths": {"123456789012.dkr.ecr.eu-west-1.amazonaws.com": {
            "username": "AzureDiamond", "password": "hunter2", "auth": "QXp1cmVEaWFtb25kOmh1bnRlcjI=",
        }}})
    );
}

#[test]
fn an_npmrc_names_the_registry_for_every_package_and_the_token_for_its_path() {
    let r = render(&npm(None, true), SecretFormat::Npmrc).unwrap();
    assert_eq!(r.type_, "Opaque");
    assert_eq!(
        text(&r, ".npmrc"),
        format!(
            "registry=https://npm.acme.example/repo/\n//npm.acme.example/repo/:_authToken={NPM_TOKEN}\n"
        )
    );
}

#[test]
fn a_scoped_npmrc_sends_only_the_scope_to_the_registry_and_anonymous_access_has_no_token() {
    let r = render(&npm(Some("@acme"), false), SecretFormat::Npmrc).unwrap();
    assert_eq!(
        text(&r, ".npmrc"),
        "@acme:registry=https://npm.acme.example/repo/\n"
    );
}

#[test]
fn a_registry_token_is_a_registrytoken_in_a_dockerconfigjson_with_its_expiry() {
    let r = render(&registry_token(), SecretFormat::DockerConfigJson).unwrap();
    assert_eq!(r.type_, "kubernetes.io/dockerconfigjson");
    let config: serde_json::Value = serde_json::from_str(&text(&r, ".dockerconfigjson")).unwrap();
    assert_eq!(
        config,
        json!({"auths": {"registry.acme.example:5000": {"registrytoken": REGISTRY_JWT}}})
    );
    assert_eq!(text(&r, "expires_at"), "2026-01-01T00:00:00Z");
    let opaque = render(&registry_token(), SecretFormat::Opaque).unwrap();
    assert_eq!(keys(&opaque), ["expires_at", "registry", "token"]);
}

#[test]
fn slack_and_perforce_write_the_environment_their_tools_read() {
    let r = render(&slack(), SecretFormat::Opaque).unwrap();
    assert_eq!(keys(&r), ["SLACK_BOT_TOKEN"]);
    assert_eq!(text(&r, "SLACK_BOT_TOKEN"), XOXB);
    let r = render(&perforce(), SecretFormat::Opaque).unwrap();
    assert_eq!(keys(&r), ["P4PASSWD", "P4PORT", "P4USER"]);
    assert_eq!(text(&r, "P4PORT"), "ssl:p4.acme.example:1666");
}

#[test]
fn an_azure_devops_pat_is_git_basic_auth_for_the_organization_and_the_cli_variable() {
    let r = render(&azure(), SecretFormat::BasicAuth).unwrap();
    assert_eq!(r.type_, "kubernetes.io/basic-auth");
    assert_eq!(keys(&r), ["AZURE_DEVOPS_EXT_PAT", "password", "username"]);
    assert_eq!(text(&r, "username"), "pat");
    assert_eq!(text(&r, "password"), PAT);
    let r = render(&azure(), SecretFormat::GitCredentials).unwrap();
    assert_eq!(
        text(&r, ".git-credentials"),
        "https://pat:adopat%2Bsecret%2F52charsofbase32xx@dev.azure.com/acme\n"
    );
}

#[test]
fn an_oauth_token_is_git_basic_auth_with_the_providers_user_name_or_a_bearer_header() {
    let r = render(&oauth(Some("oauth2")), SecretFormat::BasicAuth).unwrap();
    assert_eq!(r.type_, "kubernetes.io/basic-auth");
    assert_eq!(
        keys(&r),
        ["access_token", "expires_at", "password", "username"]
    );
    assert_eq!(text(&r, "username"), "oauth2");
    assert_eq!(text(&r, "password"), OAUTH_TOKEN);
    assert_eq!(text(&r, "expires_at"), "2026-01-01T00:00:00Z");
    let r = render(&oauth(Some("x-token-auth")), SecretFormat::GitCredentials).unwrap();
    assert_eq!(
        text(&r, ".git-credentials"),
        "https://x-token-auth:glpat-oauth%2Baccess%2Ftoken@gitlab.acme.example/gitlab\n"
    );
    let bearer = oauth(None);
    assert_eq!(bearer.default_format(), SecretFormat::Opaque);
    let r = render(&bearer, SecretFormat::Opaque).unwrap();
    assert_eq!(keys(&r), ["access_token", "authorization", "expires_at"]);
    assert_eq!(
        text(&r, "authorization"),
        format!("Bearer {OAUTH_TOKEN}-bearer")
    );
    let err = render(&bearer, SecretFormat::BasicAuth).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.secret.format: basic-auth cannot hold a bearer-only OAuth access token credential; use opaque"
    );
}

#[test]
fn a_format_that_does_not_fit_the_credential_is_refused_naming_the_field() {
    let err = render(&github(), SecretFormat::DockerConfigJson).unwrap_err();
    assert_eq!(err.reason(), "InvalidSecretFormat");
    assert_eq!(
        err.to_string(),
        "spec.secret.format: dockerconfigjson cannot hold a GitHub token credential; use basic-auth or git-credentials or opaque"
    );
    assert!(render(&aws(true), SecretFormat::BasicAuth).is_err());
    assert!(render(&aws(true), SecretFormat::GitCredentials).is_err());
    assert!(render(&docker(), SecretFormat::Opaque).is_err());
    assert!(render(&github(), SecretFormat::Npmrc).is_err());
    assert!(render(&slack(), SecretFormat::BasicAuth).is_err());
    assert!(render(&npm(None, true), SecretFormat::Opaque).is_err());
    assert!(render(&perforce(), SecretFormat::DockerConfigJson).is_err());
}

#[test]
fn every_credential_renders_in_its_default_format() {
    assert_eq!(github().default_format(), SecretFormat::BasicAuth);
    assert_eq!(aws(true).default_format(), SecretFormat::AwsCredentials);
    assert_eq!(docker().default_format(), SecretFormat::DockerConfigJson);
    assert_eq!(npm(None, true).default_format(), SecretFormat::Npmrc);
    assert_eq!(azure().default_format(), SecretFormat::BasicAuth);
    for c in every_credential() {
        let r = render(&c, c.default_format()).unwrap();
        let secret = Secret {
            type_: Some(r.type_),
            data: Some(r.data),
            ..Secret::default()
        };
        assert!(has_credential(&secret, c.default_format()), "{c:?}");
    }
}

#[test]
fn debug_output_never_shows_secrets() {
    let secrets = [
        GHS,
        AWS_SECRET,
        AWS_SESSION,
        "hunter2",
        NPM_TOKEN,
        XOXB,
        PAT,
        P4_PASSWORD,
        REGISTRY_JWT,
    ];
    for c in every_credential() {
        let shown = format!("{c:?} {c:#?}");
        for secret in secrets {
            assert!(!shown.contains(secret), "{shown}");
        }
        let anonymous = matches!(c, Credential::Npm { token: None, .. });
        assert_eq!(shown.contains("<redacted>"), !anonymous, "{shown}");
        let rendered = format!("{:?}", render(&c, c.default_format()).unwrap());
        assert!(secrets.iter().all(|s| !rendered.contains(s)), "{rendered}");
    }
    assert!(format!("{:?}", aws(true)).contains("ASIAEXAMPLE"));
}

#[test]
fn fingerprints_are_stable_distinct_and_reveal_nothing() {
    let id = github().fingerprint();
    assert_eq!(id, github().fingerprint());
    assert!(
        id.starts_with("sha256:") && id.len() == "sha256:".len() + 16,
        "{id}"
    );
    let other = Credential::GithubToken {
        token: "ghs_other".into(),
        expires_at: at(0),
        server_host: "x".into(),
    };
    let mut all = vec![id.clone(), other.fingerprint()];
    // Static AWS keys share their secret (and so their fingerprint) with the session's fixture.
    let mut rest = every_credential();
    rest.remove(2);
    all.extend(rest.iter().skip(1).map(Credential::fingerprint));
    for (i, a) in all.iter().enumerate() {
        assert!(all[i + 1..].iter().all(|b| a != b), "{all:?}");
        for secret in [GHS, AWS_SECRET, "hunter2", "ghs_", NPM_TOKEN, XOXB, PAT] {
            assert!(!a.contains(secret));
        }
    }
    let digest = hex::encode(Sha256::digest(GHS.as_bytes()));
    assert_eq!(id, format!("sha256:{}", &digest[..16]));
}

#[test]
fn expiry_comes_from_the_credential() {
    assert_eq!(github().expires_at(), Some(at(1_767_225_600)));
    assert_eq!(aws(true).expires_at(), Some(at(1_767_225_600)));
    assert_eq!(aws(false).expires_at(), None);
    assert_eq!(docker().expires_at(), None);
    assert_eq!(registry_token().expires_at(), Some(at(1_767_225_600)));
    for long_lived in [npm(None, true), slack(), azure(), perforce()] {
        assert_eq!(long_lived.expires_at(), None, "{long_lived:?}");
    }
}

#[test]
fn the_secret_is_named_after_the_token_and_owned_by_it() {
    let token = token(json!(null));
    let secret = build_secret(inputs(&token));
    assert_eq!(secret.metadata.name.as_deref(), Some("build"));
    assert_eq!(secret.metadata.namespace.as_deref(), Some("team-a"));
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.api_version.as_str(), owner.kind.as_str()),
        ("patchbay.dev/v1alpha1", "VcsAuthToken")
    );
    assert_eq!(
        (owner.name.as_str(), owner.uid.as_str()),
        ("build", "uid-1")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    assert_eq!(read_annotation(&secret, annotations::OWNER_UID), None);
    assert_eq!(ownership(Some(&secret), &token), Ownership::Ours);
}

#[test]
fn the_secret_carries_our_labels_and_annotations() {
    let token = token(json!(null));
    let mut inputs = inputs(&token);
    inputs.renew_requested_at = Some("2026-01-01T00:00:00Z");
    let secret = build_secret(inputs);
    let labels = secret.labels();
    assert_eq!(labels[MANAGED_BY.0], "patchbay");
    assert_eq!(labels[TOKEN_LABEL], "build");
    let expected = [
        (annotations::CONNECTION, "ci/acme-github"),
        (annotations::REQUEST_HASH, "req-1"),
        (annotations::CONNECTION_HASH, "conn-1"),
        (annotations::ISSUED_AT, "2025-12-31T23:00:00Z"),
        (annotations::EXPIRES_AT, "2026-01-01T00:00:00Z"),
        (annotations::RENEW_REQUESTED_AT, "2026-01-01T00:00:00Z"),
        (annotations::TOKEN_ID, "sha256:0123456789abcdef"),
    ];
    for (key, value) in expected {
        assert_eq!(read_annotation(&secret, key), Some(value), "{key}");
    }
}

#[test]
fn user_labels_annotations_and_name_are_preserved() {
    let token = token(json!({
        "name": "build-token", "labels": {"team": "a"}, "annotations": {"note": "hi"},
    }));
    let secret = build_secret(inputs(&token));
    assert_eq!(secret.metadata.name.as_deref(), Some("build-token"));
    assert_eq!(secret.labels()["team"], "a");
    assert_eq!(secret.labels()[TOKEN_LABEL], "build");
    assert_eq!(read_annotation(&secret, "note"), Some("hi"));
    assert_eq!(
        read_annotation(&secret, annotations::REQUEST_HASH),
        Some("req-1")
    );
}

#[test]
fn retained_secrets_have_no_owner_reference_but_remain_recognisably_ours() {
    let secret = our_secret("Retain");
    assert_eq!(secret.metadata.owner_references, None);
    assert_eq!(
        read_annotation(&secret, annotations::OWNER_UID),
        Some("uid-1")
    );
    assert_eq!(secret.labels()[MANAGED_BY.0], "patchbay");
    assert_eq!(
        ownership(Some(&secret), &token(json!(null))),
        Ownership::Ours
    );
}

#[test]
fn a_missing_secret_is_absent() {
    assert_eq!(ownership(None, &token(json!(null))), Ownership::Absent);
}

#[test]
fn a_secret_controlled_by_another_object_is_foreign() {
    let mut secret = our_secret("Delete");
    secret.metadata.owner_references = Some(vec![controller_ref("ConfigMap", "x", "uid-9")]);
    assert_eq!(
        foreign_reason(&secret),
        "it is owned by ConfigMap x (uid uid-9)"
    );
}

#[test]
fn a_secret_controlled_by_an_earlier_token_of_the_same_name_is_foreign() {
    let mut secret = our_secret("Delete");
    secret.metadata.owner_references = Some(vec![controller_ref("VcsAuthToken", "build", "uid-0")]);
    assert!(foreign_reason(&secret).contains("uid-0"));
}

#[test]
fn a_secret_without_the_managed_by_label_is_foreign() {
    let mut secret = our_secret("Delete");
    secret
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove(MANAGED_BY.0);
    assert_eq!(foreign_reason(&secret), "it is not managed by patchbay");
    secret
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(MANAGED_BY.0.into(), "Helm".into());
    assert_eq!(
        foreign_reason(&secret),
        "it is managed by Helm, not patchbay"
    );
}

#[test]
fn a_secret_labelled_for_another_token_is_foreign() {
    let mut secret = our_secret("Retain");
    secret
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(TOKEN_LABEL.into(), "deploy".into());
    assert_eq!(foreign_reason(&secret), "it belongs to VcsAuthToken deploy");
    secret.metadata.labels.as_mut().unwrap().remove(TOKEN_LABEL);
    assert!(foreign_reason(&secret).contains("no patchbay.dev/token label"));
}

#[test]
fn a_labelled_secret_without_owner_reference_or_owner_uid_is_foreign() {
    let mut secret = our_secret("Delete");
    secret.metadata.owner_references = None;
    assert!(foreign_reason(&secret).contains("neither an ownerReference"));
}

#[test]
fn a_retained_secret_of_an_earlier_token_is_foreign() {
    let mut secret = our_secret("Retain");
    let notes = secret.metadata.annotations.as_mut().unwrap();
    notes.insert(annotations::OWNER_UID.into(), "uid-0".into());
    assert_eq!(
        foreign_reason(&secret),
        "it belongs to an earlier VcsAuthToken build (uid uid-0)"
    );
}

#[test]
fn non_controller_owner_references_do_not_decide_ownership() {
    let mut secret = our_secret("Retain");
    let mut other = controller_ref("ConfigMap", "x", "uid-9");
    other.controller = None;
    secret.metadata.owner_references = Some(vec![other]);
    assert_eq!(
        ownership(Some(&secret), &token(json!(null))),
        Ownership::Ours
    );
}

#[test]
fn a_secret_with_empty_or_missing_keys_holds_no_credential() {
    let mut secret = our_secret("Delete");
    assert!(has_credential(&secret, SecretFormat::BasicAuth));
    assert!(
        !has_credential(&secret, SecretFormat::Opaque),
        "the type differs"
    );
    assert!(!has_credential(&secret, SecretFormat::GitCredentials));
    let data = secret.data.as_mut().unwrap();
    data.insert("password".into(), ByteString(Vec::new()));
    assert!(!has_credential(&secret, SecretFormat::BasicAuth));
    secret.data.as_mut().unwrap().remove("password");
    assert!(!has_credential(&secret, SecretFormat::BasicAuth));
    secret.data = None;
    assert!(!has_credential(&secret, SecretFormat::BasicAuth));
}

#[test]
fn annotations_are_read_only_when_present() {
    let secret = our_secret("Delete");
    assert_eq!(
        read_annotation(&secret, annotations::TOKEN_ID),
        Some("sha256:0123456789abcdef")
    );
    assert_eq!(read_annotation(&secret, "missing"), None);
    assert_eq!(
        read_annotation(&Secret::default(), annotations::TOKEN_ID),
        None
    );
}

#[test]
fn a_secret_patchbay_writes_for_a_token_is_recognised_by_either_label() {
    let with = |labels: &[(&str, &str)]| {
        let mut secret = Secret::default();
        secret.metadata.labels = Some(
            (labels.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        secret
    };
    assert!(written_for_a_token(&with(&[MANAGED_BY])));
    assert!(written_for_a_token(&with(&[(TOKEN_LABEL, "build")])));
    assert!(!written_for_a_token(&with(&[(
        MANAGED_BY.0,
        "someone-else"
    )])));
    assert!(!written_for_a_token(&Secret::default()));
}
