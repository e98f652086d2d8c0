use super::*;

/// 2026-01-01T00:00:00Z: the fixture's credential is issued here.
const T0: i64 = 1_767_225_600;
const REQUEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const CONNECTION: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// `T0 + secs`.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(T0 + secs).unwrap()
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

type Modifier = Box<dyn Fn(&mut Observed<'static>)>;

/// A one-hour credential issued at T0, ten minutes old, whose Secret carries every current fact;
/// then `modifiers`, in order.
fn observed(modifiers: impl IntoIterator<Item = Modifier>) -> Observed<'static> {
    let mut o = Observed {
        now: at(600),
        secret: Some(SecretFacts {
            has_credential: true,
            request_hash: Some(REQUEST),
            connection_hash: Some(CONNECTION),
            renew_requested_at: None,
            issued_at: Some(at(0)),
            expires_at: Some(at(3600)),
        }),
        request_hash: REQUEST,
        connection_hash: CONNECTION,
        renew_requested_at: None,
        last_mint: Some(at(0)),
        renew_before: None,
        jitter: 0.0,
    };
    for modify in modifiers {
        modify(&mut o);
    }
    o
}

fn now(secs: i64) -> Modifier {
    Box::new(move |o| o.now = at(secs))
}

fn without_secret() -> Modifier {
    Box::new(|o| o.secret = None)
}

/// Changes the Secret's facts; the fixture always has a Secret unless removed afterwards.
fn secret(modify: impl Fn(&mut SecretFacts<'static>) + 'static) -> Modifier {
    Box::new(move |o| modify(o.secret.as_mut().expect("fixture has a Secret")))
}

fn without_data() -> Modifier {
    secret(|s| s.has_credential = false)
}

fn without_expiry() -> Modifier {
    secret(|s| s.expires_at = None)
}

fn expiring(secs: i64) -> Modifier {
    secret(move |s| s.expires_at = Some(at(secs)))
}

fn new_request() -> Modifier {
    Box::new(|o| o.request_hash = "sha256:3333333333333333333333333333333333333333")
}

fn new_connection() -> Modifier {
    Box::new(|o| o.connection_hash = "sha256:4444444444444444444444444444444444444444")
}

fn last_mint(at: Option<Timestamp>) -> Modifier {
    Box::new(move |o| o.last_mint = at)
}

fn renew_before(before: SignedDuration) -> Modifier {
    Box::new(move |o| o.renew_before = Some(before))
}

fn jitter_of(key: &'static str) -> Modifier {
    Box::new(move |o| o.jitter = jitter_for(key))
}

fn renewal_requested(value: &'static str) -> Modifier {
    Box::new(move |o| o.renew_requested_at = Some(value))
}

fn renewal_honoured(value: &'static str) -> Modifier {
    secret(move |s| s.renew_requested_at = Some(value))
}

fn reason(decision: &Decision) -> Option<Reason> {
    match decision {
        Decision::Mint { reason, .. } => Some(*reason),
        Decision::Keep { .. } => None,
    }
}

#[test]
fn each_reason_is_found_by_its_own_check() {
    let cases: Vec<(&str, Vec<Modifier>, Reason, &str)> = vec![
        (
            "a missing Secret is minted",
            vec![without_secret()],
            Reason::SecretDoesNotExist,
            "does not exist",
        ),
        (
            "a Secret without its data keys is minted",
            vec![without_data()],
            Reason::SecretIsMissingData,
            "credential keys",
        ),
        (
            "a Secret without expires-at is minted",
            vec![without_expiry()],
            Reason::SecretHasNoExpiry,
            "patchbay.dev/expires-at",
        ),
        (
            "a Secret with no issue time anywhere is minted",
            vec![secret(|s| s.issued_at = None), last_mint(None)],
            Reason::SecretHasNoExpiry,
            "patchbay.dev/issued-at",
        ),
        (
            "a changed request is minted",
            vec![new_request()],
            Reason::RequestChanged,
            "request-hash sha256:111111111111 -> sha256:333333333333",
        ),
        (
            "a Secret without request-hash is minted",
            vec![secret(|s| s.request_hash = None)],
            Reason::RequestChanged,
            "request-hash none ->",
        ),
        (
            "a changed connection is minted",
            vec![new_connection()],
            Reason::ConnectionChanged,
            "connection-hash sha256:222222222222 -> sha256:444444444444",
        ),
        (
            "a renewal request is minted",
            vec![renewal_requested("2026-01-01T00:05:00Z")],
            Reason::RenewalRequested,
            "\"2026-01-01T00:05:00Z\"",
        ),
        (
            "an expired credential is minted",
            vec![now(3600)],
            Reason::Expired,
            "expired at 2026-01-01T01:00:00Z",
        ),
        (
            "a credential at renewAt is minted",
            vec![now(2400)],
            Reason::RenewalDue,
            "renewal time 2026-01-01T00:40:00Z reached; expires at 2026-01-01T01:00:00Z",
        ),
    ];
    for (name, modifiers, want, fragment) in cases {
        match decide(&observed(modifiers)) {
            Decision::Mint { reason, message } => {
                assert_eq!(reason, want, "{name}");
                assert!(
                    message.contains(fragment),
                    "{name}: {message:?} lacks {fragment:?}"
                );
            }
            keep => panic!("{name}: expected Mint {{ {want} }}, got {keep:?}"),
        }
    }
}

#[test]
fn earlier_checks_win_over_later_ones() {
    let cases: Vec<(&str, Vec<Modifier>, Reason)> = vec![
        (
            "missing Secret beats request change",
            vec![new_request(), without_secret()],
            Reason::SecretDoesNotExist,
        ),
        (
            "missing data beats request change",
            vec![new_request(), without_data()],
            Reason::SecretIsMissingData,
        ),
        (
            "no expiry beats request change",
            vec![new_request(), without_expiry()],
            Reason::SecretHasNoExpiry,
        ),
        (
            "request change beats connection change",
            vec![new_connection(), new_request()],
            Reason::RequestChanged,
        ),
        (
            "connection change beats renewal request",
            vec![renewal_requested("x"), new_connection()],
            Reason::ConnectionChanged,
        ),
        (
            "renewal request beats expiry",
            vec![now(4000), renewal_requested("x")],
            Reason::RenewalRequested,
        ),
        ("expiry beats renewal due", vec![now(4000)], Reason::Expired),
    ];
    for (name, modifiers, want) in cases {
        assert_eq!(reason(&decide(&observed(modifiers))), Some(want), "{name}");
    }
}

#[test]
fn matching_facts_keep_the_credential_until_renew_at() {
    assert_eq!(
        decide(&observed([])),
        Decision::Keep {
            renew_at: at(2400),
            expires_at: at(3600)
        }
    );
    assert_eq!(reason(&decide(&observed([now(2399)]))), None);
}

#[test]
fn a_restart_with_matching_facts_keeps_the_credential_with_the_same_renew_at() {
    let before = decide(&observed([jitter_of("team-a/build")]));
    // A new process: same Secret, same spec, a later clock, no in-memory state.
    let after = decide(&observed([jitter_of("team-a/build"), now(1800)]));
    assert!(matches!(before, Decision::Keep { .. }), "{before:?}");
    assert_eq!(before, after);
}

#[test]
fn a_secret_event_that_leaves_the_facts_unchanged_does_not_mint() {
    let first = decide(&observed([]));
    for _ in 0..3 {
        assert_eq!(decide(&observed([])), first);
    }
    assert_eq!(reason(&first), None);
}

#[test]
fn a_renewal_request_is_honoured_once_per_value() {
    let v1 = "2026-01-01T00:05:00Z";
    let v2 = "2026-01-01T00:09:00Z";
    assert_eq!(
        reason(&decide(&observed([renewal_requested(v1)]))),
        Some(Reason::RenewalRequested)
    );
    // The mint copied the value onto the Secret: nothing more to do.
    assert_eq!(
        reason(&decide(&observed([
            renewal_requested(v1),
            renewal_honoured(v1)
        ]))),
        None
    );
    assert_eq!(
        reason(&decide(&observed([
            renewal_requested(v2),
            renewal_honoured(v1)
        ]))),
        Some(Reason::RenewalRequested)
    );
    assert_eq!(
        reason(&decide(&observed([renewal_requested(" ")]))),
        None,
        "blank value"
    );
}

#[test]
fn an_expired_credential_minted_within_the_last_minute_waits_for_the_floor() {
    // The provider returned an expiry in the past; the mint was 10 s ago.
    let o = observed([expiring(-30), now(10)]);
    assert_eq!(
        decide(&o),
        Decision::Keep {
            renew_at: at(60),
            expires_at: at(-30)
        }
    );
    assert_eq!(
        reason(&decide(&observed([expiring(-30), now(60)]))),
        Some(Reason::Expired)
    );
}

#[test]
fn status_issued_at_stands_in_for_a_missing_issued_at_annotation() {
    let o = observed([
        secret(|s| s.issued_at = None),
        last_mint(Some(at(600))),
        now(700),
    ]);
    // Lifetime 3000 s from status.issuedAt: renewAt = 600 + 2000.
    assert_eq!(
        decide(&o),
        Decision::Keep {
            renew_at: at(2600),
            expires_at: at(3600)
        }
    );
}

#[test]
fn renew_before_is_honoured() {
    assert_eq!(
        renew_at(at(0), at(3600), Some(mins(20)), 0.0, None),
        at(2400)
    );
    assert_eq!(
        renew_at(at(0), at(3600), Some(mins(5)), 0.0, None),
        at(3300)
    );
    let o = observed([renew_before(mins(5)), now(3000)]);
    assert_eq!(
        decide(&o),
        Decision::Keep {
            renew_at: at(3300),
            expires_at: at(3600)
        }
    );
}

#[test]
fn renew_before_as_long_as_the_lifetime_falls_back_to_two_thirds() {
    assert_eq!(
        renew_at(at(0), at(3600), Some(mins(60)), 0.0, None),
        at(2400)
    );
    assert_eq!(
        renew_at(at(0), at(3600), Some(mins(90)), 0.0, None),
        at(2400)
    );
    assert_eq!(
        renew_at(at(0), at(3600), Some(mins(-5)), 0.0, None),
        at(2400),
        "negative"
    );
}

#[test]
fn jitter_moves_renew_at_earlier_by_at_most_five_percent_of_the_lifetime() {
    assert_eq!(renew_at(at(0), at(3600), None, 0.0, None), at(2400));
    assert_eq!(renew_at(at(0), at(3600), None, 1.0, None), at(2400 - 180));
    assert_eq!(renew_at(at(0), at(3600), None, 0.5, None), at(2400 - 90));
    assert_eq!(
        renew_at(at(0), at(3600), None, 7.0, None),
        at(2400 - 180),
        "clamped above"
    );
    assert_eq!(
        renew_at(at(0), at(3600), None, -1.0, None),
        at(2400),
        "clamped below"
    );
    assert_eq!(
        renew_at(at(0), at(3600), None, f64::NAN, None),
        at(2400),
        "NaN"
    );
    for key in ["a/b", "team-a/build", "ci/deploy"] {
        let r = renew_at(at(0), at(3600), Some(mins(20)), jitter_for(key), None);
        assert!(r > at(2400 - 180) && r <= at(2400), "{key}: {r}");
    }
}

#[test]
fn an_expiry_in_the_past_renews_no_sooner_than_60_s_after_the_mint() {
    assert_eq!(renew_at(at(0), at(-300), None, 1.0, None), at(60));
    assert_eq!(renew_at(at(0), at(0), Some(mins(20)), 0.5, None), at(60));
}

#[test]
fn a_10_s_lifetime_renews_no_sooner_than_60_s_after_the_mint() {
    assert_eq!(renew_at(at(0), at(10), None, 0.0, None), at(60));
    let o = observed([expiring(10), now(30)]);
    assert_eq!(
        decide(&o),
        Decision::Keep {
            renew_at: at(60),
            expires_at: at(10)
        }
    );
}

#[test]
fn short_but_trusted_lifetimes_are_renewed_before_they_lapse() {
    // The Docker token protocol's default of 60 s, and a 30 s token service.
    assert_eq!(renew_at(at(0), at(60), None, 0.0, None), at(40));
    assert_eq!(renew_at(at(0), at(30), None, 0.0, None), at(20));
    assert_eq!(
        renew_at(at(0), at(20), Some(mins(1)), 0.0, None),
        at(13) + SignedDuration::from_nanos(333_333_333)
    );
    let o = observed([expiring(60), now(41)]);
    assert_eq!(reason(&decide(&o)), Some(Reason::RenewalDue));
}

#[test]
fn the_mint_interval_is_a_minute_or_half_a_trusted_lifetime() {
    assert_eq!(mint_interval(at(0), at(3600)), MIN_MINT_INTERVAL);
    assert_eq!(mint_interval(at(0), at(90)), SignedDuration::from_secs(45));
    assert_eq!(mint_interval(at(0), at(20)), SignedDuration::from_secs(10));
    assert_eq!(mint_interval(at(0), at(19)), MIN_MINT_INTERVAL);
    assert_eq!(mint_interval(at(0), at(-5)), MIN_MINT_INTERVAL);
}

#[test]
fn the_floor_counts_from_the_last_mint_when_it_is_known() {
    assert_eq!(renew_at(at(0), at(10), None, 0.0, Some(at(100))), at(160));
}

#[test]
fn lifetime_problem_describes_expiries_at_or_before_issue_and_short_lifetimes() {
    let cases = [
        (
            30,
            "expires at 2026-01-01T00:00:30Z, 30 s after issue; renewing no sooner than 15 s after each mint",
        ),
        (
            10,
            "10 s after issue; renewing no sooner than 60 s after each mint",
        ),
        (59, "59 s after issue"),
        (
            0,
            "expires at 2026-01-01T00:00:00Z, at the moment it was issued;",
        ),
        (
            -45,
            "expires at 2025-12-31T23:59:15Z, 45 s before it was issued;",
        ),
    ];
    for (lifetime, fragment) in cases {
        let message = lifetime_problem(at(0), at(lifetime)).expect("a problem");
        assert!(
            message.starts_with("the provider returned a credential that expires at"),
            "{message}"
        );
        assert!(
            message.contains(fragment),
            "{lifetime} s: {message:?} lacks {fragment:?}"
        );
    }
}

#[test]
fn lifetime_problem_is_silent_for_sensible_lifetimes() {
    assert_eq!(lifetime_problem(at(0), at(60)), None);
    assert_eq!(lifetime_problem(at(0), at(120)), None);
    assert_eq!(lifetime_problem(at(0), at(3600)), None);
}

#[test]
fn go_durations_parse_like_time_parse_duration() {
    let cases = [
        ("20m", SignedDuration::from_mins(20)),
        ("1h30m", SignedDuration::from_mins(90)),
        ("90s", SignedDuration::from_secs(90)),
        ("1.5h", SignedDuration::from_mins(90)),
        ("500ms", SignedDuration::from_millis(500)),
        (
            "1h2m3s4ms5us6ns",
            SignedDuration::from_nanos(3_723_004_005_006),
        ),
        ("7µs", SignedDuration::from_micros(7)),
        (".5s", SignedDuration::from_millis(500)),
        ("1.s", SignedDuration::from_secs(1)),
        ("+5m", SignedDuration::from_mins(5)),
        ("0", SignedDuration::ZERO),
        ("0s", SignedDuration::ZERO),
    ];
    for (input, want) in cases {
        assert_eq!(parse_go_duration(input), Ok(want), "{input}");
    }
}

#[test]
fn invalid_go_durations_are_rejected_with_a_message_naming_the_input() {
    let cases = [
        ("", DurationError::Empty, "invalid duration \"\": empty"),
        (
            "20",
            DurationError::MissingUnit("20".into()),
            "invalid duration \"20\": missing unit",
        ),
        (
            "1h30",
            DurationError::MissingUnit("1h30".into()),
            "\"1h30\"",
        ),
        (
            "1d",
            DurationError::UnknownUnit("1d".into(), "d".into()),
            "invalid duration \"1d\": unknown unit \"d\"",
        ),
        (
            "-5m",
            DurationError::Negative("-5m".into()),
            "invalid duration \"-5m\": must not be negative",
        ),
        (
            "h",
            DurationError::Invalid("h".into()),
            "\"h\": expected a number",
        ),
        (".s", DurationError::Invalid(".s".into()), "\".s\""),
        ("+", DurationError::Invalid("+".into()), "\"+\""),
        (
            "1.2.3s",
            DurationError::Invalid("1.2.3s".into()),
            "\"1.2.3s\"",
        ),
        (
            "3000000h",
            DurationError::Overflow("3000000h".into()),
            "\"3000000h\": too large",
        ),
    ];
    for (input, want, fragment) in cases {
        let err = parse_go_duration(input).expect_err(input);
        assert_eq!(err, want, "{input}");
        assert!(err.to_string().contains(fragment), "{input}: {err}");
    }
}

#[test]
fn request_hash_is_stable_and_order_sensitive() {
    let h = request_hash(&["spec", "connection"]);
    assert_eq!(h, request_hash(&["spec", "connection"]));
    assert!(h.starts_with("sha256:") && h.len() == 7 + 64, "{h}");
    assert_ne!(h, request_hash(&["connection", "spec"]));
    assert_ne!(
        request_hash(&["ab", "c"]),
        request_hash(&["a", "bc"]),
        "parts are separated"
    );
    // sha256 of "a\0b".
    assert_eq!(
        request_hash(&["a", "b"]),
        format!("sha256:{}", hex::encode(Sha256::digest(b"a\0b")))
    );
}

#[test]
fn jitter_for_is_stable_and_in_range() {
    assert_eq!(jitter_for("team-a/build"), jitter_for("team-a/build"));
    assert_ne!(jitter_for("team-a/build"), jitter_for("team-b/build"));
    for i in 0..1000 {
        let j = jitter_for(&format!("ns/token-{i}"));
        assert!((0.0..1.0).contains(&j), "{j}");
    }
}

#[test]
fn reasons_print_as_camel_case() {
    assert_eq!(Reason::SecretDoesNotExist.as_str(), "SecretDoesNotExist");
    assert_eq!(Reason::RenewalDue.to_string(), "RenewalDue");
    assert_eq!(Reason::ConnectionChanged.as_str(), "ConnectionChanged");
}

#[test]
fn a_failing_renewal_retries_several_times_before_the_credential_lapses() {
    use std::time::Duration;
    let secs = Duration::from_secs;
    // 23 s left of a 70 s token and a 20 s backoff step: wait 2.875 s, not 20.
    assert_eq!(
        retry_delay(secs(20), Duration::ZERO, Some(secs(23))),
        Duration::from_millis(2_875)
    );
    // Close to the lapse the wait stays at least a second: no tight loop.
    assert_eq!(retry_delay(secs(5), Duration::ZERO, Some(secs(2))), secs(1));
    // Plenty of time left: the backoff as it is.
    assert_eq!(
        retry_delay(secs(10), Duration::ZERO, Some(secs(3_000))),
        secs(10)
    );
    // No valid credential: the backoff as it is.
    assert_eq!(retry_delay(secs(40), Duration::ZERO, None), secs(40));
    // The provider's Retry-After wins over the cap.
    assert_eq!(retry_delay(secs(20), secs(30), Some(secs(23))), secs(30));
}
