use std::collections::BTreeMap;

use super::*;

#[test]
fn a_short_session_name_is_namespace_dot_name() {
    assert_eq!(session_name("team-a", "build"), "team-a.build");
}

#[test]
fn a_long_session_name_is_cut_to_64_with_a_hash_suffix() {
    let name = "a".repeat(200);
    let one = session_name("team-a", &name);
    assert_eq!(one.len(), 64);
    assert!(one.starts_with("team-a.aaa"), "{one}");
    assert_eq!(one, session_name("team-a", &name), "deterministic");
    let other = session_name("team-a", &format!("{name}b"));
    assert_ne!(one, other, "distinct tokens keep distinct names");
}

#[test]
fn session_names_are_always_valid_for_sts() {
    let inputs = [
        ("ns", "x"),
        ("", "x"),
        ("ns", "ünïcode name"),
        ("a", &"b.".repeat(100)),
    ];
    for (ns, name) in inputs {
        let s = session_name(ns, name);
        assert!((2..=64).contains(&s.len()), "{s}");
        assert!(
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
            "{s}"
        );
    }
    assert_ne!(session_name("ns", "a b"), session_name("ns", "a-b"));
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn session_tags_always_stamp_namespace_and_name_first() {
    let user = tags(&[("cost-center", "42"), ("team", "Payments Ops")]);
    let all = session_tags("team-a", "build", &user).unwrap();
    assert_eq!(
        all,
        vec![
            ("patchbay.dev/namespace".to_string(), "team-a".to_string()),
            ("patchbay.dev/name".to_string(), "build".to_string()),
            ("cost-center".to_string(), "42".to_string()),
            ("team".to_string(), "Payments Ops".to_string()),
        ]
    );
}

#[test]
fn session_tag_errors_name_the_offending_key() {
    let cases = [
        (
            tags(&[("patchbay.dev/name", "x")]),
            "patchbay.dev/name",
            "reserved",
        ),
        (
            tags(&[("Patchbay.dev/x", "x")]),
            "Patchbay.dev/x",
            "reserved",
        ),
        (tags(&[("", "x")]), "\"\"", "1 to 128"),
        (tags(&[(&"k".repeat(129), "x")]), "kkkk", "1 to 128"),
        (tags(&[("bad*key", "x")]), "bad*key", "'*'"),
        (
            tags(&[("long", &"v".repeat(257))]),
            "\"long\"",
            "at most 256",
        ),
        (tags(&[("quote", "a\"b")]), "\"quote\"", "'\"'"),
        (
            tags(&[("Team", "a"), ("team", "b")]),
            "team",
            "ignoring case",
        ),
    ];
    for (user, key, says) in cases {
        let e = session_tags("ns", "n", &user).unwrap_err();
        assert_eq!(e.reason, "InvalidSessionTags");
        assert!(e.message.contains(key), "{key}: {}", e.message);
        assert!(e.message.contains(says), "{says}: {}", e.message);
    }
}

#[test]
fn at_most_48_user_tags_fit_beside_the_two_patchbay_tags() {
    let user: BTreeMap<String, String> = (0..48).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_eq!(session_tags("ns", "n", &user).unwrap().len(), 50);
    let user: BTreeMap<String, String> = (0..49).map(|i| (format!("k{i}"), "v".into())).collect();
    let e = session_tags("ns", "n", &user).unwrap_err();
    assert!(e.message.contains("49 tags"), "{}", e.message);
}

#[test]
fn tag_values_may_use_unicode_letters_and_spaces() {
    let user = tags(&[("équipe", "Zürich Ost"), ("path", "a/b:c=d+e-f@g_h.i")]);
    assert!(session_tags("ns", "n", &user).is_ok());
}

#[test]
fn effective_duration_defaults_to_an_hour() {
    assert_eq!(effective_duration(None, None, false), 3600);
    assert_eq!(effective_duration(None, Some(43200), false), 3600);
}

#[test]
fn effective_duration_clamps_to_900_and_the_connection_maximum() {
    assert_eq!(effective_duration(Some(60), None, false), 900);
    assert_eq!(effective_duration(Some(7200), None, false), 3600);
    assert_eq!(effective_duration(Some(7200), Some(14400), false), 7200);
    assert_eq!(effective_duration(Some(50000), Some(43200), false), 43200);
    assert_eq!(effective_duration(None, Some(1800), false), 1800);
    assert_eq!(effective_duration(Some(1000), Some(100), false), 900);
}

#[test]
fn effective_duration_is_capped_at_an_hour_when_roles_are_chained() {
    assert_eq!(effective_duration(Some(7200), Some(14400), true), 3600);
    assert_eq!(effective_duration(Some(1200), Some(14400), true), 1200);
}

#[test]
fn role_allowed_matches_globs_and_nothing_by_default() {
    let arn = "arn:aws:iam::123456789012:role/ci-deployer";
    let globs = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(!role_allowed(arn, &[]));
    assert!(role_allowed(arn, &globs(&[arn])));
    assert!(role_allowed(
        arn,
        &globs(&["arn:aws:iam::123456789012:role/ci-*"])
    ));
    assert!(role_allowed(arn, &globs(&["arn:aws:iam::*:role/*"])));
    assert!(role_allowed(
        arn,
        &globs(&["arn:aws:iam::12345678901?:role/ci-deployer"])
    ));
    assert!(!role_allowed(
        arn,
        &globs(&["arn:aws:iam::123456789012:role/ci"])
    ));
    assert!(!role_allowed(
        arn,
        &globs(&["arn:aws:iam::999999999999:role/*"])
    ));
    assert!(!role_allowed(
        "arn:aws:iam::123456789012:role/ci-deployer-x",
        &globs(&["arn:aws:iam::123456789012:role/ci-deployer"])
    ));
    assert!(role_allowed(
        "arn:aws:iam::123456789012:role/team/ci-x",
        &globs(&["arn:aws:iam::123456789012:role/*ci-*"])
    ));
}
