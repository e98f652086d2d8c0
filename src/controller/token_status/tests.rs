use serde_json::json;

use super::*;
use crate::api::ConnectionKind;

fn token(spec: serde_json::Value) -> VcsAuthTokenSpec {
    serde_json::from_value(spec).unwrap()
}

fn connection(spec: serde_json::Value) -> Connection {
    Connection::new("conn", serde_json::from_value(spec).unwrap())
}

fn at() -> ConnectionRef {
    ConnectionRef {
        namespace: "ci".into(),
        name: "conn".into(),
    }
}

fn github_app() -> Connection {
    connection(json!({"githubApp": {"appId": "1", "privateKey": {"name": "k", "key": "k"}}}))
}

#[test]
fn a_github_request_fits_a_github_app_connection() {
    let t = token(json!({"connection": "conn", "github": {"repositories": ["app"]}}));
    assert!(request_fits(&t, &github_app(), &at()).is_ok());
}

#[test]
fn a_github_request_against_an_aws_connection_is_a_kind_mismatch() {
    let t = token(json!({"connection": "conn", "github": {"repositories": ["app"]}}));
    let aws =
        connection(json!({"aws": {"region": "eu-west-1", "credentials": {"defaultChain": {}}}}));
    let err = request_fits(&t, &aws, &at()).unwrap_err();
    assert_eq!(err.reason, "ConnectionKindMismatch");
    assert_eq!(
        err.message,
        "Connection ci/conn is a aws connection, which takes spec.aws; this token has spec.github"
    );
}

#[test]
fn a_token_without_request_block_fits_only_projected_kinds() {
    let t = token(json!({"connection": "conn"}));
    assert_eq!(
        request_fits(&t, &github_app(), &at()).unwrap_err().reason,
        "ConnectionKindMismatch"
    );
    let npm = connection(json!({"npmRegistry": {}}));
    assert!(request_fits(&t, &npm, &at()).is_ok());
}

#[test]
fn every_oauth_kind_takes_the_oauth_block() {
    for kind in ConnectionKind::ALL {
        let is_oauth = matches!(
            kind,
            ConnectionKind::GithubOAuth
                | ConnectionKind::Gitlab
                | ConnectionKind::BitbucketCloud
                | ConnectionKind::BitbucketServer
                | ConnectionKind::AzureDevOpsOAuth
                | ConnectionKind::Google
                | ConnectionKind::JetbrainsSpace
        );
        let block = kind.request_block();
        assert_eq!(block == Some("oauth"), is_oauth, "{kind}");
    }
}
