use serde_json::json;

use std::sync::Arc;

use super::*;
use crate::api::connection::ConnectionSpec;
use crate::hierarchy::Tree;
use crate::providers::ProviderError;
use crate::providers::testing::{connection, secrets, spec};

fn at(seconds: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
}

fn google() -> ConnectionSpec {
    spec(json!({"google": {"clientId": "id", "clientSecret": {"name": "g", "key": "secret"}}}))
}

fn role() -> ConnectionSpec {
    spec(
        json!({"aws": {"region": "eu-west-1", "credentials": {"iamRole": {
            "connection": "keys", "roleArn": "arn:aws:iam::123456789012:role/r",
        }}}}),
    )
}

fn keys() -> ConnectionSpec {
    spec(
        json!({"aws": {"region": "eu-west-1", "credentials": {"accessKeys": {
            "accessKeyId": {"name": "k", "key": "id"}, "secretAccessKey": {"name": "k", "key": "secret"},
        }}}}),
    )
}

fn decide_for(
    spec: &ConnectionSpec,
    values: &SecretValues,
    previous: Option<&ConnectionStatus>,
    others: &[(&str, &str, ConnectionSpec)],
    now: i64,
) -> Decision {
    let mut tree = Tree::new("ci");
    tree.upsert("ci", Default::default());
    let mut conn = connection("ci", "conn", spec.clone());
    conn.metadata.uid = Some("uid-1".into());
    conn.metadata.generation = Some(3);
    conn.status = previous.cloned();
    let others: Vec<Arc<Connection>> = (others.iter())
        .map(|(ns, name, spec)| Arc::new(connection(ns, name, spec.clone())))
        .collect();
    let env = Env {
        tree: &tree,
        connections: &others,
        allow_default_chain: false,
        endpoints: &crate::providers::EndpointPolicy::default(),
        ca_bundle: None,
    };
    let facts = Facts {
        conn: &conn,
        secrets: values,
        env: &env,
    };
    decide(&facts, &at(now))
}

fn condition<'a>(status: &'a ConnectionStatus, type_: &str) -> &'a crate::api::Condition {
    status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn a_valid_connection_is_ready_with_its_summary_and_generation() {
    let d = decide_for(&google(), &secrets(&[("g", "secret", "x")]), None, &[], 10);
    assert!(d.ready);
    let ready = condition(&d.status, "Ready");
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::True, "Valid")
    );
    assert_eq!(ready.message, "Google OAuth client id");
    assert_eq!(ready.observed_generation, Some(3));
    assert_eq!(d.status.observed_generation, Some(3));
    assert_eq!(d.status.connection_type.as_deref(), Some("google"));
    assert!(d.status.conditions.iter().all(|c| c.type_ != "Stalled"));
    assert_eq!(
        d.transition,
        Some(("Valid".into(), "Google OAuth client id".into()))
    );
}

#[test]
fn a_broken_connection_is_not_ready_and_stalled_with_the_same_reason() {
    let d = decide_for(&google(), &secrets(&[]), None, &[], 10);
    assert!(!d.ready);
    assert_eq!(condition(&d.status, "Ready").reason, "SecretNotFound");
    let stalled = condition(&d.status, "Stalled");
    assert_eq!(
        (stalled.status, stalled.reason.as_str()),
        (ConditionStatus::True, "SecretNotFound")
    );
}

#[test]
fn deciding_again_on_unchanged_facts_changes_nothing() {
    let values = secrets(&[]);
    let first = decide_for(&google(), &values, None, &[], 10);
    let second = decide_for(&google(), &values, Some(&first.status), &[], 99);
    assert_eq!(second.status, first.status);
    assert_eq!(second.transition, None);
}

#[test]
fn a_secret_that_appears_turns_the_connection_ready_and_clears_stalled() {
    let broken = decide_for(&google(), &secrets(&[]), None, &[], 10);
    let fixed = decide_for(
        &google(),
        &secrets(&[("g", "secret", "x")]),
        Some(&broken.status),
        &[],
        20,
    );
    assert!(fixed.ready);
    assert_eq!(
        condition(&fixed.status, "Ready").last_transition_time,
        at(20)
    );
    assert!(fixed.status.conditions.iter().all(|c| c.type_ != "Stalled"));
    assert!(fixed.transition.is_some());
}

#[test]
fn an_iam_role_without_external_id_gets_a_stable_generated_one() {
    let others = [("ci", "keys", keys())];
    let first = decide_for(&role(), &secrets(&[]), None, &others, 10);
    assert!(first.ready, "{:?}", first.status.conditions);
    let id = first.status.external_id.clone().unwrap();
    assert_eq!(id, crate::providers::external_id("uid-1"));
    let mut kept = first.status.clone();
    kept.external_id = Some("patchbay-earlier".into());
    let again = decide_for(&role(), &secrets(&[]), Some(&kept), &others, 20);
    assert_eq!(
        again.status.external_id.as_deref(),
        Some("patchbay-earlier")
    );
    assert!(
        condition(&first.status, "Ready")
            .message
            .ends_with("assumed with ci/keys")
    );
}

#[test]
fn a_verified_condition_says_no_live_check_ran() {
    let d = decide_for(&google(), &secrets(&[("g", "secret", "x")]), None, &[], 10);
    let verified = condition(&d.status, "Verified");
    assert_eq!(
        (verified.status, verified.reason.as_str()),
        (ConditionStatus::Unknown, "NotChecked")
    );
}

#[test]
fn no_message_carries_secret_values() {
    let d = decide_for(
        &google(),
        &secrets(&[("g", "secret", "super-secret-value")]),
        None,
        &[],
        10,
    );
    let text = serde_json::to_string(&d.status).unwrap();
    assert!(!text.contains("super-secret-value"));
}

#[test]
fn a_connection_is_verified_when_unchecked_asked_or_stale_and_not_otherwise() {
    let d = decide_for(&google(), &secrets(&[("g", "secret", "x")]), None, &[], 10);
    let mut status = d.status;
    assert!(
        needs_verify(&status, Some(3), None, &at(10)),
        "never checked"
    );
    set_verified(
        &mut status,
        Some(3),
        Verification::Verified("app acme".into()),
        None,
        &at(10),
    );
    assert!(
        !needs_verify(&status, Some(3), None, &at(20)),
        "just checked"
    );
    assert!(
        needs_verify(&status, Some(4), None, &at(20)),
        "new generation"
    );
    assert!(
        needs_verify(&status, Some(3), Some("now"), &at(20)),
        "asked by annotation"
    );
    set_verified(
        &mut status,
        Some(3),
        Verification::Verified("app acme".into()),
        Some("now"),
        &at(20),
    );
    assert!(
        !needs_verify(&status, Some(3), Some("now"), &at(30)),
        "the same request is honoured once"
    );
    assert!(
        needs_verify(&status, Some(3), Some("now"), &at(20 + 600)),
        "stale after ten minutes"
    );
}

#[test]
fn a_failed_check_is_verified_false_with_its_reason() {
    let mut status = ConnectionStatus::default();
    set_verified(
        &mut status,
        Some(1),
        Verification::Failed(ProviderError::transient(
            "AppNotFound",
            "GitHub does not know App 9",
        )),
        None,
        &at(5),
    );
    let v = condition(&status, "Verified");
    assert_eq!(
        (v.status, v.reason.as_str()),
        (ConditionStatus::False, "AppNotFound")
    );
}

#[test]
fn a_kind_without_a_live_check_is_verified_unknown_with_its_reason() {
    let mut status = ConnectionStatus::default();
    let outcome = Verification::Unknown {
        reason: "VerificationNotAvailable",
        message: "this release has no live check for slack connections".into(),
    };
    set_verified(&mut status, Some(1), outcome, None, &at(5));
    let v = condition(&status, "Verified");
    assert_eq!(
        (v.status, v.reason.as_str()),
        (ConditionStatus::Unknown, "VerificationNotAvailable")
    );
    assert_eq!(
        status.verified_at, None,
        "no check ran, so no time is stamped"
    );
}
