use kube::CustomResourceExt;
use serde_json::json;

use super::*;

fn spec(value: serde_json::Value) -> ConnectionSpec {
    serde_json::from_value(value).expect("spec deserialises")
}

fn secret(name: &str) -> serde_json::Value {
    json!({"name": name, "key": "value"})
}

#[test]
fn the_kind_is_the_one_provider_block_that_is_set() {
    let s = spec(json!({"google": {"clientId": "id", "clientSecret": secret("g")}}));
    assert_eq!(s.kind(), Some(ConnectionKind::Google));
}

#[test]
fn two_provider_blocks_have_no_kind() {
    let s = spec(json!({
        "google": {"clientId": "id", "clientSecret": secret("g")},
        "slack": {"clientId": "id", "clientSecret": secret("s"), "botToken": secret("b")},
    }));
    assert_eq!(
        s.kinds(),
        vec![ConnectionKind::Google, ConnectionKind::Slack]
    );
    assert_eq!(s.kind(), None);
}

#[test]
fn aws_and_ecr_are_not_available_to_sub_projects_unless_asked() {
    let creds = json!({"defaultChain": {}});
    let aws = spec(json!({"aws": {"region": "eu-west-1", "credentials": creds}}));
    let ecr = spec(json!({"ecr": {"region": "eu-west-1", "credentials": creds}}));
    assert!(!aws.effective_available_for_sub_projects());
    assert!(!ecr.effective_available_for_sub_projects());

    let shared = spec(json!({
        "availableForSubProjects": true,
        "aws": {"region": "eu-west-1", "credentials": creds},
    }));
    assert!(shared.effective_available_for_sub_projects());
}

#[test]
fn other_kinds_are_available_to_sub_projects_unless_forbidden() {
    let open = spec(json!({"google": {"clientId": "id", "clientSecret": secret("g")}}));
    assert!(open.effective_available_for_sub_projects());
    let closed = spec(json!({
        "availableForSubProjects": false,
        "google": {"clientId": "id", "clientSecret": secret("g")},
    }));
    assert!(!closed.effective_available_for_sub_projects());
}

#[test]
fn field_names_follow_the_design_spelling() {
    let names: Vec<&str> = ConnectionKind::ALL.iter().map(|k| k.field_name()).collect();
    let schema = serde_json::to_value(Connection::crd().spec.versions[0].schema.clone()).unwrap();
    let props = schema["openAPIV3Schema"]["properties"]["spec"]["properties"]
        .as_object()
        .unwrap();
    for name in names {
        assert!(props.contains_key(name), "spec has no {name} block");
    }
}

#[test]
fn defaults_fill_server_urls_and_session_settings() {
    let s = spec(json!({
        "githubApp": {"appId": "1", "privateKey": secret("k")},
    }));
    assert_eq!(s.github_app.unwrap().server_url, "https://github.com");

    let s = spec(
        json!({"aws": {"region": "eu-west-1", "credentials": {"accessKeys": {
            "accessKeyId": secret("a"), "secretAccessKey": secret("a"),
        }}}}),
    );
    let aws = s.aws.unwrap();
    assert!(aws.available_for_build_steps);
    assert!(aws.credentials.access_keys.unwrap().use_session_credentials);
}

#[test]
fn serialising_omits_unset_blocks() {
    let s = spec(json!({"gitlab": {"applicationId": "app", "secret": secret("gl")}}));
    let back = serde_json::to_value(&s).unwrap();
    assert_eq!(
        back,
        json!({"gitlab": {"serverUrl": "https://gitlab.com", "applicationId": "app", "secret": secret("gl")}})
    );
}

#[test]
fn secret_refs_name_each_reference_by_its_field() {
    let s = spec(json!({"githubApp": {
        "appId": "1",
        "privateKey": {"name": "app", "key": "key.pem"},
        "webhookSecret": {"name": "hooks", "key": "secret"},
    }}));
    let fields: Vec<String> = s.secret_refs().into_iter().map(|u| u.field).collect();
    assert_eq!(
        fields,
        ["spec.githubApp.privateKey", "spec.githubApp.webhookSecret"]
    );
    assert_eq!(s.secret_names(), ["app", "hooks"]);
}

#[test]
fn aws_access_keys_are_secret_refs_and_other_credentials_are_not() {
    let keys = spec(
        json!({"aws": {"region": "eu-west-1", "credentials": {"accessKeys": {
            "accessKeyId": secret("keys"), "secretAccessKey": secret("keys"),
        }}}}),
    );
    assert_eq!(keys.secret_refs().len(), 2);
    assert_eq!(keys.secret_names(), ["keys"]);
    let role = spec(
        json!({"ecr": {"region": "eu-west-1", "credentials": {"iamRole": {
            "connection": "src", "roleArn": "arn:aws:iam::123456789012:role/r",
        }}}}),
    );
    assert!(role.secret_refs().is_empty());
    assert!(role.aws_credentials().unwrap().iam_role.is_some());
}
