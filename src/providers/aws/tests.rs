use std::collections::BTreeMap;

use serde_json::json;

use std::sync::Arc;

use super::*;
use crate::api::{PARENT_LABEL, VcsAuthToken};
use crate::hierarchy::Tree;
use crate::providers::testing::{connection, spec};

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
        json!({"availableForSubProjects": available, "aws": {"region": "eu-west-1",
            "allowedRoleArns": ["arn:aws:iam::123456789012:role/deployer"],
            "credentials": {"accessKeys": {
            "accessKeyId": {"name": "k", "key": "id"}, "secretAccessKey": {"name": "k", "key": "secret"},
        }}}}),
    )
}

fn role_with(source: &str, arn: &str, external_id: Option<&str>) -> ConnectionSpec {
    let mut role = json!({"connection": source, "roleArn": arn});
    if let Some(id) = external_id {
        role["externalId"] = json!(id);
    }
    spec(json!({"aws": {"region": "eu-west-1", "credentials": {"iamRole": role}}}))
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
        json!({"availableForSubProjects": true, "aws": {"region": "eu-west-1",
            "allowedRoleArns": ["arn:aws:iam::123456789012:role/*"], "credentials": {"defaultChain": {}}}}),
    )
}

type World = Vec<(&'static str, &'static str, ConnectionSpec)>;

/// `f` with the connections of `world` in the cache.
fn with_env<R>(
    world: &[(&str, &str, ConnectionSpec)],
    allow: bool,
    f: impl FnOnce(&Env<'_>) -> R,
) -> R {
    let connections: Vec<Arc<Connection>> = (world.iter())
        .map(|(n, m, s)| Arc::new(connection(n, m, s.clone())))
        .collect();
    let tree = tree();
    let env = Env {
        tree: &tree,
        connections: &connections,
        allow_default_chain: allow,
        endpoints: &crate::providers::EndpointPolicy::default(),
        ca_bundle: None,
    };
    f(&env)
}

/// The source connections `ns/name`'s chain goes through, or why it cannot be followed.
fn check(world: &World, ns: &str, name: &str, allow: bool) -> Result<Vec<String>, ProviderError> {
    with_env(world, allow, |env| {
        let top = env.connection(ns, name).unwrap();
        Ok(chain::walk(&top, env)?.sources())
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
        check(&world, "platform", "deployer", false).unwrap(),
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

#[test]
fn an_aws_connection_reserved_for_sources_serves_no_token() {
    let token: VcsAuthToken = serde_json::from_value(json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "t", "namespace": "ci"},
        "spec": {"connection": "conn", "aws": {}},
    }))
    .unwrap();
    let source_only = connection(
        "ci",
        "conn",
        spec(
            json!({"aws": {"region": "eu-west-1", "availableForBuildSteps": false,
            "credentials": {"defaultChain": {}}}}),
        ),
    );
    let err = plan::AwsPlan::new(&token, &source_only).unwrap_err();
    assert_eq!(err.reason, "ConnectionNotAvailable");
    assert!(err.message.contains("spec.aws.availableForBuildSteps"));
}

#[test]
fn a_chain_depends_on_every_link_and_reads_the_base_keys_in_the_base_namespace() {
    let world = [
        ("ci", "keys", keys(true)),
        ("platform", "deployer", role("keys")),
    ];
    let inputs = with_env(&world, false, |env| {
        let top = env.connection("platform", "deployer").unwrap();
        AWS.inputs(&top, env).unwrap()
    });
    assert_eq!(
        inputs.reads,
        [
            crate::providers::SecretRead::new("ci", "k"),
            crate::providers::SecretRead::new("ci", "k")
        ]
    );
    assert_eq!(
        inputs.depends_on.len(),
        4,
        "uid and generation of both links"
    );
}

#[test]
fn a_source_in_another_namespace_lends_its_identity_only_to_the_roles_it_lists() {
    let admin = "arn:aws:iam::123456789012:role/admin";
    let world = vec![
        ("ci", "keys", keys(true)),
        ("platform", "escalate", role_with("keys", admin, None)),
    ];
    let err = check(&world, "platform", "escalate", false).unwrap_err();
    assert_eq!(err.reason, "RoleNotAllowed");
    assert_eq!(
        err.message,
        "spec.aws.credentials.iamRole.roleArn: arn:aws:iam::123456789012:role/admin matches none of ci/keys's allowedRoleArns; a source in another namespace lends its identity only to the roles it lists"
    );
}

#[test]
fn a_source_in_the_same_namespace_lends_its_identity_to_any_role() {
    let admin = "arn:aws:iam::123456789012:role/admin";
    let world = vec![
        ("ci", "keys", keys(true)),
        ("ci", "own", role_with("keys", admin, Some("chosen"))),
    ];
    assert_eq!(check(&world, "ci", "own", false).unwrap(), ["ci/keys"]);
}

#[test]
fn an_external_id_cannot_be_chosen_through_a_source_in_another_namespace() {
    let deployer = "arn:aws:iam::123456789012:role/deployer";
    let world = vec![
        ("ci", "keys", keys(true)),
        (
            "platform",
            "forger",
            role_with("keys", deployer, Some("victims-id")),
        ),
    ];
    let err = check(&world, "platform", "forger", false).unwrap_err();
    assert_eq!(err.reason, "ExternalIdNotAllowed");
    assert!(err.message.contains("status.externalId"), "{}", err.message);
}

fn token_in(namespace: &str, request: serde_json::Value) -> VcsAuthToken {
    serde_json::from_value(json!({
        "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
        "metadata": {"name": "t", "namespace": namespace},
        "spec": {"connection": "conn", "aws": request},
    }))
    .unwrap()
}

fn static_keys(copies: bool) -> Connection {
    connection(
        "ci",
        "conn",
        spec(
            json!({"copySecretToSubProjects": copies, "availableForSubProjects": true,
            "aws": {"region": "eu-west-1", "credentials": {"accessKeys": {
            "accessKeyId": {"name": "k", "key": "id"}, "secretAccessKey": {"name": "k", "key": "s"},
            "useSessionCredentials": false}}}}),
        ),
    )
}

#[test]
fn long_lived_keys_are_copied_only_into_the_connections_own_namespace_unless_it_allows_more() {
    let own = plan::AwsPlan::new(&token_in("ci", json!({})), &static_keys(false));
    assert!(own.unwrap().long_lived);
    let err =
        plan::AwsPlan::new(&token_in("platform", json!({})), &static_keys(false)).unwrap_err();
    assert_eq!(err.reason, "CopyNotAllowed");
    assert!(err.message.contains("long-lived keys"), "{}", err.message);
    let allowed = plan::AwsPlan::new(&token_in("platform", json!({})), &static_keys(true));
    assert!(allowed.is_ok());
}

#[test]
fn the_operators_own_identity_is_not_handed_to_another_namespace() {
    let operator = connection(
        "ci",
        "conn",
        spec(
            json!({"availableForSubProjects": true, "aws": {"region": "eu-west-1",
            "allowedRoleArns": ["arn:aws:iam::123456789012:role/*"],
            "credentials": {"defaultChain": {}}}}),
        ),
    );
    let err = plan::AwsPlan::new(&token_in("platform", json!({})), &operator).unwrap_err();
    assert_eq!(err.reason, "CopyNotAllowed");
    assert!(
        err.message.contains("operator's own identity"),
        "{}",
        err.message
    );
    let role = json!({"roleArn": "arn:aws:iam::123456789012:role/deployer"});
    assert!(plan::AwsPlan::new(&token_in("platform", role), &operator).is_ok());
}
