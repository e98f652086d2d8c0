//! When to mint: a chain of small pure checks over what the controller observed.
//!
//! No I/O and no clock reads: `now` is part of [`Observed`]. [`decide`] evaluates, in order,
//! and the first check that fires names the reason for minting:
//!
//! 1. [`Reason::SecretDoesNotExist`]: there is no output Secret owned by patchbay.
//! 2. [`Reason::SecretIsMissingData`]: the data keys of the format are absent or empty.
//! 3. [`Reason::SecretHasNoExpiry`]: no `patchbay.dev/expires-at` annotation (or no issue time:
//!    neither `patchbay.dev/issued-at` nor `status.issuedAt`), so no renewal time exists.
//! 4. [`Reason::RequestChanged`]: the Secret's `patchbay.dev/request-hash` is not the current one.
//! 5. [`Reason::ConnectionChanged`]: the Secret's `patchbay.dev/connection-hash` is not current.
//! 6. [`Reason::RenewalRequested`]: the token's `patchbay.dev/renew-requested-at` differs from the
//!    value the Secret carries; the controller copies it onto the Secret when it mints, so each
//!    distinct value causes exactly one mint.
//! 7. [`Reason::Expired`]: `now >= expiresAt`, and the mint interval (see [`mint_interval`]) has
//!    passed since the last mint.
//! 8. [`Reason::RenewalDue`]: `now >= renewAt` (see [`renew_at`]).
//!
//! Otherwise [`Decision::Keep`] says when to look again. Nothing else causes a mint: an event of
//! the output Secret that leaves these facts as they were yields the same `Keep`, and after an
//! operator restart a Secret carrying the current hashes and an expiry beyond `renewAt` is kept
//! without calling the provider. `renewAt` is never sooner than the mint interval after the last
//! mint (60 s, or half the lifetime for credentials of 20 s to 2 min, such as the Docker token
//! protocol's 60 s registry tokens), and an already-expired credential is not re-minted within
//! that interval either, so a provider that returns an expiry in the past or absurdly soon cannot
//! cause a tight loop ([`lifetime_problem`] words the condition for it).

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

/// No mint follows another sooner than this, unless the credential's lifetime is short but
/// trusted (see [`mint_interval`]).
pub const MIN_MINT_INTERVAL: SignedDuration = SignedDuration::from_secs(60);
/// The shortest lifetime renewed before it lapses: from this lifetime up, the mint interval is
/// half the lifetime (at most [`MIN_MINT_INTERVAL`]); a shorter or negative one is treated as a
/// provider error and gets the full [`MIN_MINT_INTERVAL`], so it cannot cause a tight loop.
pub const MIN_TRUSTED_LIFETIME: SignedDuration = SignedDuration::from_secs(20);
/// Lifetimes shorter than this are reported by [`lifetime_problem`]: 60 s is the shortest the
/// Docker token protocol allows, and no provider here issues shorter ones on purpose.
pub const MIN_SENSIBLE_LIFETIME: SignedDuration = SignedDuration::from_secs(60);
/// How long before expiry a credential whose refresh revokes the one it replaces is renewed
/// (when the token sets no `renewBefore`): late, so that builds holding it lose as little as
/// possible; a lifetime shorter than this falls back to the two-thirds rule.
pub const LATE_RENEW_BEFORE: SignedDuration = SignedDuration::from_secs(300);
/// The largest jitter subtracted from `renewAt`, as a fraction of the lifetime.
pub const MAX_JITTER_FRACTION: f64 = 0.05;

/// The shortest wait between two attempts to renew a credential that is about to lapse.
pub const MIN_RETRY_BEFORE_LAPSE: std::time::Duration = std::time::Duration::from_secs(1);
/// How many retries a failing renewal still fits into the time its credential has left, at
/// least: the wait is capped at this share of that time.
pub const RETRIES_BEFORE_LAPSE: u32 = 8;

/// The wait before the next attempt after a failed mint. `backoff` is the exponential backoff of
/// the failures so far, `asked` what the provider asked for (Retry-After, a rate-limit reset),
/// `left` how long the credential in the Secret stays valid (None when there is none). While a
/// credential is still valid, the wait is capped at a [`RETRIES_BEFORE_LAPSE`]th of its time
/// left (never under [`MIN_RETRY_BEFORE_LAPSE`]), so that a flaky provider gets several more
/// tries before the credential lapses instead of one backoff step that outlasts it; the
/// provider's own wait is always honoured.
pub fn retry_delay(
    backoff: std::time::Duration,
    asked: std::time::Duration,
    left: Option<std::time::Duration>,
) -> std::time::Duration {
    let capped = match left {
        Some(left) => backoff.min((left / RETRIES_BEFORE_LAPSE).max(MIN_RETRY_BEFORE_LAPSE)),
        None => backoff,
    };
    capped.max(asked)
}

/// What the controller observed, as plain data.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The current time, injected.
    pub now: Timestamp,
    /// The output Secret, if it exists and patchbay owns it (foreign Secrets are handled elsewhere).
    pub secret: Option<SecretFacts<'a>>,
    /// Hash of the effective request now (spec + resolved connection); see [`request_hash`].
    pub request_hash: &'a str,
    /// Hash of the connection's credential inputs now (its provider block and the data of the
    /// Secrets its credentials come from); see [`request_hash`].
    pub connection_hash: &'a str,
    /// Value of the annotation `patchbay.dev/renew-requested-at` on the VcsAuthToken.
    pub renew_requested_at: Option<&'a str>,
    /// `status.issuedAt` of the current credential.
    pub last_mint: Option<Timestamp>,
    /// Parsed `spec.renewBefore` (see [`parse_go_duration`]).
    pub renew_before: Option<SignedDuration>,
    /// Spread of renewals in `0.0..1.0`, normally [`jitter_for`] of the token's `namespace/name`.
    pub jitter: f64,
}

/// Facts about the output Secret, read from its data keys and annotations.
#[derive(Clone, Debug, Default)]
pub struct SecretFacts<'a> {
    /// The data keys of the format are present and non-empty.
    pub has_credential: bool,
    /// Annotation `patchbay.dev/request-hash`.
    pub request_hash: Option<&'a str>,
    /// Annotation `patchbay.dev/connection-hash`.
    pub connection_hash: Option<&'a str>,
    /// Annotation `patchbay.dev/renew-requested-at`: the renewal request last honoured.
    pub renew_requested_at: Option<&'a str>,
    /// Annotation `patchbay.dev/issued-at`.
    pub issued_at: Option<Timestamp>,
    /// Annotation `patchbay.dev/expires-at`.
    pub expires_at: Option<Timestamp>,
}

/// Why a credential is minted; [`Reason::as_str`] is the condition and event reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// There is no output Secret owned by patchbay.
    SecretDoesNotExist,
    /// The Secret lacks the data keys of its format, or they are empty.
    SecretIsMissingData,
    /// The Secret records no expiry (or no issue time), so no renewal time can be computed.
    SecretHasNoExpiry,
    /// The effective request (spec + resolved connection) changed.
    RequestChanged,
    /// The connection's credential inputs changed.
    ConnectionChanged,
    /// A user asked for a renewal through `patchbay.dev/renew-requested-at`.
    RenewalRequested,
    /// The credential has expired.
    Expired,
    /// The renewal time was reached.
    RenewalDue,
}

impl Reason {
    /// The CamelCase name used as condition and event reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SecretDoesNotExist => "SecretDoesNotExist",
            Reason::SecretIsMissingData => "SecretIsMissingData",
            Reason::SecretHasNoExpiry => "SecretHasNoExpiry",
            Reason::RequestChanged => "RequestChanged",
            Reason::ConnectionChanged => "ConnectionChanged",
            Reason::RenewalRequested => "RenewalRequested",
            Reason::Expired => "Expired",
            Reason::RenewalDue => "RenewalDue",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Mint a new credential now.
    Mint {
        /// The first check that fired.
        reason: Reason,
        /// Human-readable; names what changed, never a secret value.
        message: String,
    },
    /// Nothing to do until `renew_at`.
    Keep {
        /// When to look again.
        renew_at: Timestamp,
        /// When the current credential expires.
        expires_at: Timestamp,
    },
}

/// A check of [`decide`]: `Some((reason, message))` when it calls for a mint.
type Check = fn(&Observed<'_>) -> Option<(Reason, String)>;

/// The checks of [`decide`], in the order they are evaluated.
const CHECKS: [Check; 8] = [
    secret_does_not_exist,
    secret_is_missing_data,
    secret_has_no_expiry,
    request_changed,
    connection_changed,
    renewal_requested,
    expired,
    renewal_due,
];

/// Runs the checks in order (see the module documentation); the first that fires decides a mint.
pub fn decide(o: &Observed<'_>) -> Decision {
    match (CHECKS.iter().find_map(|check| check(o)), schedule(o)) {
        (Some((reason, message)), _) => Decision::Mint { reason, message },
        (None, Some(s)) => Decision::Keep {
            renew_at: s.renew_at,
            expires_at: s.expires_at,
        },
        // Not reached: `secret_has_no_expiry` fires whenever there is no schedule.
        (None, None) => Decision::Mint {
            reason: Reason::SecretHasNoExpiry,
            message: "the Secret records no expiry".into(),
        },
    }
}

/// The timing of the current credential, when the Secret records enough to compute it.
struct Schedule {
    expires_at: Timestamp,
    renew_at: Timestamp,
    earliest_mint: Timestamp,
}

fn schedule(o: &Observed<'_>) -> Option<Schedule> {
    let secret = o.secret.as_ref()?;
    let (expires_at, issued_at) = (secret.expires_at?, secret.issued_at.or(o.last_mint)?);
    let renew_at = renew_at(issued_at, expires_at, o.renew_before, o.jitter, o.last_mint);
    let interval = mint_interval(issued_at, expires_at).as_nanos();
    let earliest_mint = shift(o.last_mint.unwrap_or(issued_at), interval);
    Some(Schedule {
        expires_at,
        renew_at,
        earliest_mint,
    })
}

fn secret_does_not_exist(o: &Observed<'_>) -> Option<(Reason, String)> {
    let message = || "the output Secret does not exist".to_owned();
    o.secret
        .is_none()
        .then(|| (Reason::SecretDoesNotExist, message()))
}

fn secret_is_missing_data(o: &Observed<'_>) -> Option<(Reason, String)> {
    let message = "the Secret lacks the credential keys of its format, or they are empty";
    let missing = o.secret.as_ref().is_some_and(|s| !s.has_credential);
    missing.then(|| (Reason::SecretIsMissingData, message.to_owned()))
}

fn secret_has_no_expiry(o: &Observed<'_>) -> Option<(Reason, String)> {
    let message = if o.secret.as_ref()?.expires_at.is_none() {
        "the Secret has no patchbay.dev/expires-at annotation"
    } else if schedule(o).is_none() {
        "the Secret has no patchbay.dev/issued-at annotation and the token no status.issuedAt"
    } else {
        return None;
    };
    Some((Reason::SecretHasNoExpiry, message.to_owned()))
}

fn request_changed(o: &Observed<'_>) -> Option<(Reason, String)> {
    let recorded = o.secret.as_ref()?.request_hash;
    let what = "the effective request changed (request-hash";
    hash_changed(Reason::RequestChanged, what, recorded, o.request_hash)
}

fn connection_changed(o: &Observed<'_>) -> Option<(Reason, String)> {
    let recorded = o.secret.as_ref()?.connection_hash;
    let what = "the connection's credentials changed (connection-hash";
    hash_changed(Reason::ConnectionChanged, what, recorded, o.connection_hash)
}

/// `what` is the message up to the hashes, which are shortened to 12 hex digits.
fn hash_changed(
    reason: Reason,
    what: &str,
    recorded: Option<&str>,
    now: &str,
) -> Option<(Reason, String)> {
    let short = |h: Option<&str>| h.map_or("none", |h| h.get(..19).unwrap_or(h)).to_owned();
    let message = || format!("{what} {} -> {})", short(recorded), short(Some(now)));
    (recorded != Some(now)).then(|| (reason, message()))
}

/// The renewal a token's `patchbay.dev/renew-requested-at` value asks for: none when it is
/// absent or blank.
pub fn renewal_request(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

fn renewal_requested(o: &Observed<'_>) -> Option<(Reason, String)> {
    let requested = renewal_request(o.renew_requested_at)?;
    let honoured = o.secret.as_ref()?.renew_requested_at;
    let message = || format!("patchbay.dev/renew-requested-at is now {requested:?}");
    (honoured != Some(requested)).then(|| (Reason::RenewalRequested, message()))
}

fn expired(o: &Observed<'_>) -> Option<(Reason, String)> {
    let s = schedule(o)?;
    let message = || format!("the credential expired at {}", s.expires_at);
    (o.now >= s.expires_at && o.now >= s.earliest_mint).then(|| (Reason::Expired, message()))
}

fn renewal_due(o: &Observed<'_>) -> Option<(Reason, String)> {
    let s = schedule(o)?;
    let (renew_at, expires_at) = (s.renew_at, s.expires_at);
    let message = || format!("renewal time {renew_at} reached; expires at {expires_at}");
    (o.now >= s.renew_at).then(|| (Reason::RenewalDue, message()))
}

/// `t` moved by `nanos`, saturating at the ends of the representable range.
fn shift(t: Timestamp, nanos: i128) -> Timestamp {
    let limit = i128::from(i64::MAX) * 1_000_000_000;
    let d = SignedDuration::from_nanos_i128(nanos.clamp(-limit, limit));
    t.saturating_add(d).unwrap_or(t) // only a `Span` with days or more can fail
}

/// When to renew a credential issued at `issued_at` that expires at `expires_at`.
///
/// `issuedAt + lifetime * 2/3`, or `expiresAt - renewBefore` when `renew_before` is given and
/// shorter than the lifetime (otherwise, or when negative, the 2/3 rule); minus a jitter of up to
/// 5 % of the lifetime scaled by `jitter` (clamped to `0.0..=1.0`); and never sooner than the
/// [`mint_interval`] after `last_mint` (or `issued_at` when `None`).
pub fn renew_at(
    issued_at: Timestamp,
    expires_at: Timestamp,
    renew_before: Option<SignedDuration>,
    jitter: f64,
    last_mint: Option<Timestamp>,
) -> Timestamp {
    let lifetime = expires_at.duration_since(issued_at).as_nanos();
    let planned = match renew_before.map(|d| d.as_nanos()) {
        Some(before) if (0..lifetime).contains(&before) => shift(expires_at, -before),
        _ => shift(issued_at, lifetime * 2 / 3),
    };
    let jitter = if jitter >= 0.0 { jitter.min(1.0) } else { 0.0 }; // NaN too
    let spread = (lifetime.max(0) as f64 * MAX_JITTER_FRACTION * jitter) as i128;
    let interval = mint_interval(issued_at, expires_at).as_nanos();
    let floor = shift(last_mint.unwrap_or(issued_at), interval);
    shift(planned, -spread).max(floor)
}

/// The least time between two mints of a credential issued at `issued_at` that expires at
/// `expires_at`: [`MIN_MINT_INTERVAL`], or half the lifetime when that is shorter and the lifetime
/// is at least [`MIN_TRUSTED_LIFETIME`]. A 60 s registry token is thus renewed at 40 s, before it
/// lapses, while a provider that claims 1 s lifetimes is asked at most once a minute.
pub fn mint_interval(issued_at: Timestamp, expires_at: Timestamp) -> SignedDuration {
    let lifetime = expires_at.duration_since(issued_at);
    if lifetime >= MIN_TRUSTED_LIFETIME {
        (lifetime / 2).min(MIN_MINT_INTERVAL)
    } else {
        MIN_MINT_INTERVAL
    }
}

/// A message when the provider returned an expiry at or before `issued_at`, or a lifetime under
/// two minutes; `None` for a sensible lifetime.
pub fn lifetime_problem(issued_at: Timestamp, expires_at: Timestamp) -> Option<String> {
    let lifetime = expires_at.duration_since(issued_at);
    let when = if lifetime >= MIN_SENSIBLE_LIFETIME {
        return None;
    } else if lifetime.is_zero() {
        "at the moment it was issued".to_owned()
    } else if lifetime.is_negative() {
        let secs = lifetime.as_secs().unsigned_abs();
        format!("{secs} s before it was issued")
    } else {
        format!("{} s after issue", lifetime.as_secs())
    };
    Some(format!(
        "the provider returned a credential that expires at {expires_at}, {when}; \
         renewing no sooner than {} s after each mint",
        mint_interval(issued_at, expires_at).as_secs()
    ))
}

/// A deterministic value in `0.0..1.0` from the SHA-256 of `key` (the token's `namespace/name`),
/// so a restarted operator computes the same `renewAt`.
pub fn jitter_for(key: &str) -> f64 {
    let digest = Sha256::digest(key.as_bytes());
    // The top 53 bits: every value is exact in an f64 and below 1.0.
    let top = u64::from_be_bytes(std::array::from_fn(|i| digest[i])) >> 11;
    top as f64 / (1u64 << 53) as f64
}

/// `"sha256:"` and the hex SHA-256 of `parts` joined with a 0 byte; used for the request and
/// connection hashes.
pub fn request_hash(parts: &[&str]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(parts.join("\0"))))
}

/// Why a `spec.renewBefore` value is not a valid duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The input is empty.
    #[error("invalid duration \"\": empty")]
    Empty,
    /// The input starts with `-`.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
    /// A number is not followed by a unit.
    #[error("invalid duration {0:?}: missing unit (one of ns, us, µs, ms, s, m, h)")]
    MissingUnit(String),
    /// The input, and a unit that is not one of `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    #[error("invalid duration {0:?}: unknown unit {1:?} (one of ns, us, µs, ms, s, m, h)")]
    UnknownUnit(String, String),
    /// A unit without a number, or a malformed number.
    #[error("invalid duration {0:?}: expected a number before each unit")]
    Invalid(String),
    /// The duration does not fit in 64-bit nanoseconds.
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

/// Units of Go durations in nanoseconds (`µs` as the micro sign or the Greek letter).
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses Go's `time.ParseDuration` syntax as used by `spec.renewBefore`: `20m`, `1h30m`,
/// `90s`, `1.5h`, `500ms`, `0`. Negative durations are rejected.
pub fn parse_go_duration(s: &str) -> Result<SignedDuration, DurationError> {
    let owned = || s.to_owned();
    let mut rest = match s.strip_prefix('+').unwrap_or(s) {
        _ if s.is_empty() => return Err(DurationError::Empty),
        _ if s.starts_with('-') => return Err(DurationError::Negative(owned())),
        "0" => return Ok(SignedDuration::ZERO),
        "" => return Err(DurationError::Invalid(owned())),
        rest => rest,
    };
    let is_number = |c: char| c.is_ascii_digit() || c == '.';
    // ASCII digits to a number (0 when empty); `None` on overflow.
    let digits = |d: &str| {
        d.bytes().try_fold(0u128, |n, b| {
            n.checked_mul(10)?.checked_add((b - b'0').into())
        })
    };
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (number, tail) = rest.split_at(rest.find(|c| !is_number(c)).unwrap_or(rest.len()));
        let (unit, next) = tail.split_at(tail.find(is_number).unwrap_or(tail.len()));
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(DurationError::Invalid(owned()));
        }
        let unit_nanos = match UNITS.iter().find(|(name, _)| *name == unit) {
            Some((_, nanos)) => *nanos,
            None if unit.is_empty() => return Err(DurationError::MissingUnit(owned())),
            None => return Err(DurationError::UnknownUnit(owned(), unit.to_owned())),
        };
        // 18 fraction digits keep `fraction * unit_nanos` within u128; later ones are below 1 ns.
        let frac = &frac[..frac.len().min(18)];
        let fraction_nanos = digits(frac).unwrap_or(0) * unit_nanos / 10u128.pow(frac.len() as u32);
        total = digits(int)
            .and_then(|n| n.checked_mul(unit_nanos))
            .and_then(|n| n.checked_add(fraction_nanos + total))
            .filter(|&n| n <= i64::MAX as u128)
            .ok_or_else(|| DurationError::Overflow(owned()))?;
        rest = next;
    }
    Ok(SignedDuration::from_nanos(total as i64))
}
