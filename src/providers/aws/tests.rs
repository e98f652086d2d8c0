use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::api::PARENT_LABEL;
use crate::providers::testing::spec;

fn tree() -> Tree {
    let mut t = Tree::new("ci");
    t.upsert("ci", BTreeMap::new());
    t.upsert(
        "platform",
        BTreeMap::from([(PARENT_LABEL.to_string(), "ci".to_string())]),
    );
    t
}

fn keys(available: bool) -> ConnectionSpec {
    spec(
        json!({"availableForSubProjects": available, "aws": {"region": "eu-west-1", "credentials": {"accessKeys": {
            "accessKeyId": {"name": "k", "key": "id"}, "secretAccessKey": {"name": "k", "key": "secret"},
        }}}}),
    )
}

fn role(source: &str) -> ConnectionSpec {
    spec(
        json!({"aws": {"region": "eu-west-1", "credentials": {"iamRole": {
            "connection": source, "roleArn": "arn:aws:iam::123456789012:role/deployer",
        }}}}),
    )
}

fn default_chain() -> ConnectionSpec {
    spec(
        json!({"availableForSubProjects": true, "aws": {"region": "eu-west-1", "credentials": {"defaultChain": {}}}}),
    )
}

type World = Vec<(&'static str, &'static str, ConnectionSpec)>;

fn check(world: &World, ns: &str, name: &str, allow: bool) -> Result<AwsCheck, ConfigError> {
    let spec = &world
        .iter()
        .find(|(n, m, _)| *n == ns && *m == name)
        .unwrap()
        .2;
    check_aws_credentials(&tree(), ns, name, spec, allow, |ns, name| {
        world
            .iter()
            .find(|(n, m, _)| *n == ns && *m == name)
            .map(|(_, _, s)| s)
    })
}

#[test]
fn the_regional_sts_endpoint_is_the_default() {
    assert_eq!(
        sts_endpoint("eu-west-1", None).unwrap(),
        "https://sts.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        sts_endpoint("cn-north-1", None).unwrap(),
        "https://sts.cn-north-1.amazonaws.com.cn"
    );
    assert_eq!(
        sts_endpoint("eu-west-1", Some("https://sts.amazonaws.com/")).unwrap(),
        "https://sts.amazonaws.com"
    );
}

#[test]
fn the_generated_external_id_is_stable_per_connection() {
    assert_eq!(external_id("uid-1"), external_id("uid-1"));
    assert_ne!(external_id("uid-1"), external_id("uid-2"));
    assert!(external_id("uid-1").starts_with("patchbay-"));
    assert_eq!(external_id("uid-1").len(), "patchbay-".len() + 32);
}

#[test]
fn an_iam_role_resolves_its_source_in_a_parent_namespace() {
    let world = vec![
        ("ci", "keys", keys(true)),
        ("platform", "deployer", role("keys")),
    ];
    assert_eq!(
        check(&world, "platform", "deployer", false)
            .unwrap()
            .sources,
        ["ci/keys"]
    );
}

#[test]
fn a_source_not_available_for_sub_projects_is_refused() {
    let world = vec![
        ("ci", "keys", keys(false)),
        ("platform", "deployer", role("keys")),
    ];
    let err = check(&world, "platform", "deployer", false).unwrap_err();
    assert_eq!(err.reason, "SourceConnectionNotAvailable");
    assert!(
        err.message
            .starts_with("spec.aws.credentials.iamRole.connection: Connection ci/keys"),
        "{}",
        err.message
    );
}

#[test]
fn a_missing_source_is_reported_with_the_namespaces_searched() {
    let world = vec![("platform", "deployer", role("keys"))];
    let err = check(&world, "platform", "deployer", false).unwrap_err();
    assert_eq!(err.reason, "SourceConnectionNotFound");
    assert!(
        err.message.ends_with("no Connection keys in platform, ci"),
        "{}",
        err.message
    );
}

#[test]
fn a_chain_of_roles_that_returns_to_itself_is_a_cycle() {
    let world = vec![("ci", "a", role("b")), ("ci", "b", role("a"))];
    let err = check(&world, "ci", "a", false).unwrap_err();
    assert_eq!(err.reason, "SourceConnectionCycle");
    assert!(
        err.message.contains("ci/a → ci/b → ci/a"),
        "{}",
        err.message
    );
}

#[test]
fn a_role_naming_itself_is_a_cycle() {
    let world = vec![("ci", "a", role("a"))];
    assert_eq!(
        check(&world, "ci", "a", false).unwrap_err().reason,
        "SourceConnectionCycle"
    );
}

#[test]
fn a_non_aws_source_is_a_kind_mismatch() {
    let ecr = spec(json!({"ecr": {"region": "eu-west-1", "credentials": {"defaultChain": {}}}}));
    let world = vec![
        ("ci", "registry", ecr),
        ("ci", "deployer", role("registry")),
    ];
    assert_eq!(
        check(&world, "ci", "deployer", true).unwrap_err().reason,
        "SourceConnectionKindMismatch"
    );
}

#[test]
fn the_default_chain_needs_the_operator_flag_even_behind_a_role() {
    let world = vec![
        ("ci", "base", default_chain()),
        ("platform", "deployer", role("base")),
    ];
    let err = check(&world, "ci", "base", false).unwrap_err();
    assert_eq!(err.reason, "DefaultChainNotAllowed");
    assert!(
        err.message
            .starts_with("spec.aws.credentials.defaultChain: "),
        "{}",
        err.message
    );
    let err = check(&world, "platform", "deployer", false).unwrap_err();
    assert_eq!(err.reason, "DefaultChainNotAllowed");
    assert!(err.message.contains("ci/base"), "{}", err.message);
    assert!(check(&world, "platform", "deployer", true).is_ok());
}
