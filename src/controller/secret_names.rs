//! Which Secrets exist, as the Secret metadata watch the controllers already run reports them,
//! so that a token's first mint need not read its output Secret only to learn that it is not
//! there yet, and a token looked at again (a restart looks at every one) need not read a Secret
//! the watch reports exactly as patchbay last wrote it. Pure bookkeeping: the watch is the
//! caller's.
//!
//! Only a complete answer counts for absence: until the watch's list has ended (and again
//! while it lists anew) nothing is known to be absent, and the caller reads as before. A Secret
//! that the watch has not brought yet looks absent for a moment; the caller only ever creates
//! on that answer, which the API server refuses over an existing Secret (the write then reads
//! it and never overwrites a Secret patchbay does not own).
//!
//! What renewal reads of an output Secret ([`OutputState`]: its resourceVersion, the token it
//! was written for and its owner's uid, the hashes and the renewal request its annotations
//! record) is kept as two digests per Secret (the renewal request apart: a token that asks for
//! none does not care which one the Secret last answered). A caller that knows the version it wrote and the hashes it would compare
//! learns from [`SecretNames::unchanged`] whether the Secret still is that version with those
//! annotations; anything else (another version, a digest collision, a Secret not yet reported)
//! answers no, and the caller reads the Secret as before.
//!
//! Lean and bounded: three keyed 64-bit digests per Secret (no names kept; a collision only
//! costs a read), at most [`MAX_NAMES`] of them; past that everything is forgotten until the
//! next list, which costs reads, nothing else.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;

/// The most Secrets remembered (about 10 MiB of digests at most).
pub const MAX_NAMES: usize = 262_144;

/// Where the watch's account of the Secrets stands.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Phase {
    /// A list is on its way (or none has begun): nothing is known to be absent.
    #[default]
    Listing,
    /// The list has ended; every Secret that exists has been reported.
    Complete,
    /// Past [`MAX_NAMES`]: nothing is remembered until the next list.
    Forgotten,
}

#[derive(Default)]
struct State {
    /// By the digest of each Secret's namespace and name: the digests of its [`OutputState`]
    /// without and of its renewal request.
    digests: HashMap<u64, (u64, u64)>,
    phase: Phase,
    /// When the current list began.
    since: Option<Instant>,
}

/// What renewal reads of an output Secret, as the watch reports it or as a token expects it.
#[derive(Clone, Copy, Debug, Hash, PartialEq)]
pub struct OutputState<'a> {
    /// The Secret's resourceVersion.
    pub resource_version: &'a str,
    /// The token it was written for (its token label).
    pub token: Option<&'a str>,
    /// The uid of the token it belongs to: its controller's, else its owner-uid annotation.
    pub owner: Option<&'a str>,
    /// The request hash its annotations record.
    pub request_hash: Option<&'a str>,
    /// The connection hash its annotations record.
    pub connection_hash: Option<&'a str>,
    /// The renewal request its annotations record.
    pub renew_requested_at: Option<&'a str>,
}

/// The Secrets of the cluster, by digest of namespace and name.
pub struct SecretNames {
    keys: RandomState,
    state: Mutex<State>,
    phase: watch::Sender<Phase>,
}

impl Default for SecretNames {
    fn default() -> Self {
        Self {
            keys: RandomState::new(),
            state: Mutex::default(),
            phase: watch::Sender::new(Phase::Listing),
        }
    }
}

impl SecretNames {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn digest(&self, what: impl Hash) -> u64 {
        self.keys.hash_one(what)
    }

    /// The digests of `output` without and of its renewal request.
    fn digests(&self, output: &OutputState<'_>) -> (u64, u64) {
        let OutputState {
            resource_version,
            token,
            owner,
            request_hash,
            connection_hash,
            renew_requested_at,
        } = *output;
        let written = (
            resource_version,
            token,
            owner,
            request_hash,
            connection_hash,
        );
        (self.digest(written), self.digest(renew_requested_at))
    }

    /// Moves to `phase`, telling those who wait in [`Self::settled`].
    fn enter(&self, state: &mut State, phase: Phase) {
        state.phase = phase;
        self.phase.send_replace(phase);
    }

    /// The watch starts a list: nothing is known until it ends.
    pub fn listing(&self) {
        let mut state = self.lock();
        *state = State {
            since: Some(Instant::now()),
            ..State::default()
        };
        self.enter(&mut state, Phase::Listing);
    }

    /// The watch reports Secret `namespace/name` (listed, created or changed) as `output`.
    pub fn seen(&self, namespace: &str, name: &str, output: &OutputState<'_>) {
        let (key, value) = (self.digest((namespace, name)), self.digests(output));
        let mut state = self.lock();
        if state.digests.len() >= MAX_NAMES && !state.digests.contains_key(&key) {
            // Forget all until the next list: absent or unchanged is then never answered.
            *state = State::default();
            self.enter(&mut state, Phase::Forgotten);
        }
        if state.phase != Phase::Forgotten {
            state.digests.insert(key, value);
        }
    }

    /// The watch reports Secret `namespace/name` deleted.
    pub fn deleted(&self, namespace: &str, name: &str) {
        let key = self.digest((namespace, name));
        self.lock().digests.remove(&key);
    }

    /// The watch's list has ended: from now on a Secret it has not reported is absent.
    pub fn listed(&self) {
        let mut state = self.lock();
        if state.phase == Phase::Listing {
            self.enter(&mut state, Phase::Complete);
        }
    }

    /// Forgets everything (a new leadership term starts its own watch).
    pub fn clear(&self) {
        self.listing();
    }

    /// Waits until the watch's list has ended (or nothing will be remembered until the next
    /// one), at most until `max` after the list began: a list that takes longer (or keeps
    /// failing) delays each caller once, not each call.
    pub async fn settled(&self, max: Duration) {
        let mut phase = self.phase.subscribe();
        let since = {
            let state = self.lock();
            if state.phase != Phase::Listing {
                return;
            }
            state.since.unwrap_or_else(Instant::now)
        };
        let listed = phase.wait_for(|p| *p != Phase::Listing);
        let _ = tokio::time::timeout_at(since + max, listed).await;
    }

    /// Whether Secret `namespace/name` is known not to exist: the watch's list is complete and
    /// has not reported it.
    pub fn absent(&self, namespace: &str, name: &str) -> bool {
        let key = self.digest((namespace, name));
        let state = self.lock();
        state.phase == Phase::Complete && !state.digests.contains_key(&key)
    }

    /// Whether the watch last reported Secret `namespace/name` as exactly `expected`; a
    /// renewal request of `None` matches whatever request the Secret records.
    pub fn unchanged(&self, namespace: &str, name: &str, expected: &OutputState<'_>) -> bool {
        let key = self.digest((namespace, name));
        let (written, renewal) = self.digests(expected);
        let any_renewal = expected.renew_requested_at.is_none();
        (self.lock().digests.get(&key))
            .is_some_and(|&(w, r)| w == written && (any_renewal || r == renewal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Secret at version `rv` with no annotations patchbay reads.
    fn at(rv: &str) -> OutputState<'_> {
        OutputState {
            resource_version: rv,
            token: None,
            owner: None,
            request_hash: None,
            connection_hash: None,
            renew_requested_at: None,
        }
    }

    fn listed(names: &[(&str, &str)]) -> SecretNames {
        let secrets = SecretNames::default();
        secrets.listing();
        for (ns, name) in names {
            secrets.seen(ns, name, &at("1"));
        }
        secrets.listed();
        secrets
    }

    #[test]
    fn nothing_is_absent_before_the_first_list_has_ended() {
        let secrets = SecretNames::default();
        assert!(!secrets.absent("team", "build"));
        secrets.listing();
        secrets.seen("team", "other", &at("1"));
        assert!(!secrets.absent("team", "build"), "the list is still going");
        secrets.listed();
        assert!(secrets.absent("team", "build"));
    }

    #[test]
    fn a_listed_or_created_secret_is_present_until_it_is_deleted() {
        let secrets = listed(&[("team", "key")]);
        assert!(!secrets.absent("team", "key"));
        secrets.seen("team", "build", &at("1"));
        assert!(!secrets.absent("team", "build"));
        secrets.deleted("team", "build");
        assert!(secrets.absent("team", "build"));
    }

    #[test]
    fn the_same_name_in_another_namespace_is_another_secret() {
        let secrets = listed(&[("team-a", "build")]);
        assert!(!secrets.absent("team-a", "build"));
        assert!(secrets.absent("team-b", "build"));
        assert!(secrets.absent("team", "a-build"), "no ambiguity in joining");
    }

    #[test]
    fn a_new_list_starts_from_nothing_and_knows_nothing_until_it_ends() {
        let secrets = listed(&[("team", "build")]);
        secrets.listing();
        assert!(!secrets.absent("team", "gone"));
        secrets.listed();
        assert!(
            secrets.absent("team", "build"),
            "not in the new list: deleted while the watch was away"
        );
    }

    #[test]
    fn a_new_term_knows_nothing_until_its_watch_has_listed() {
        let secrets = listed(&[]);
        secrets.clear();
        assert!(!secrets.absent("team", "build"));
    }

    #[test]
    fn past_the_bound_nothing_is_absent_until_the_next_list() {
        let secrets = listed(&[]);
        for n in 0..MAX_NAMES {
            secrets.seen("team", &n.to_string(), &at("1"));
        }
        assert!(secrets.absent("team", "unseen"));
        secrets.seen("team", "one-more", &at("1"));
        assert!(!secrets.absent("team", "unseen"));
        assert!(secrets.lock().digests.len() <= 1, "the digests are freed");
        secrets.listing();
        secrets.listed();
        assert!(secrets.absent("team", "unseen"));
    }

    /// An output Secret of token `build` as patchbay writes it at version `rv`.
    fn output<'a>(rv: &'a str, request_hash: &'a str, renew: Option<&'a str>) -> OutputState<'a> {
        OutputState {
            resource_version: rv,
            token: Some("build"),
            owner: Some("uid-1"),
            request_hash: Some(request_hash),
            connection_hash: Some("c1"),
            renew_requested_at: renew,
        }
    }

    #[test]
    fn an_output_secret_is_unchanged_only_at_the_version_and_annotations_the_watch_last_reported() {
        let secrets = listed(&[]);
        secrets.seen("team", "build", &output("5", "r1", None));
        assert!(secrets.unchanged("team", "build", &output("5", "r1", None)));
        for other in [
            output("6", "r1", None),
            output("5", "r2", None),
            output("5", "r1", Some("2026-12-04T10:00:00Z")),
            OutputState {
                token: Some("other"),
                ..output("5", "r1", None)
            },
            OutputState {
                owner: Some("uid-of-a-token-deleted-since"),
                ..output("5", "r1", None)
            },
            OutputState {
                connection_hash: Some("c2"),
                ..output("5", "r1", None)
            },
        ] {
            assert!(!secrets.unchanged("team", "build", &other), "{other:?}");
        }
        assert!(!secrets.unchanged("ci", "build", &output("5", "r1", None)));
        secrets.seen("team", "build", &output("6", "r1", None));
        assert!(
            !secrets.unchanged("team", "build", &output("5", "r1", None)),
            "edited since"
        );
        secrets.deleted("team", "build");
        assert!(!secrets.unchanged("team", "build", &output("6", "r1", None)));
    }

    #[test]
    fn a_new_list_or_term_knows_no_secret_unchanged_until_the_watch_reports_it_again() {
        let secrets = listed(&[]);
        secrets.seen("team", "build", &output("5", "r1", None));
        secrets.listing();
        assert!(!secrets.unchanged("team", "build", &output("5", "r1", None)));
        secrets.seen("team", "build", &output("5", "r1", None));
        assert!(secrets.unchanged("team", "build", &output("5", "r1", None)));
        secrets.clear();
        assert!(!secrets.unchanged("team", "build", &output("5", "r1", None)));
    }

    #[tokio::test]
    async fn waiting_for_the_list_ends_when_it_is_complete_or_forgotten_or_at_the_limit() {
        let secrets = std::sync::Arc::new(SecretNames::default());
        let begun = std::time::Instant::now();
        secrets.settled(Duration::from_millis(200)).await;
        assert!(begun.elapsed() >= Duration::from_millis(200), "no list yet");
        let listing = secrets.clone();
        let lists = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            listing.listed();
        });
        let begun = std::time::Instant::now();
        secrets.settled(Duration::from_secs(30)).await;
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "woken by the list's end"
        );
        lists.await.unwrap();
        secrets.listing();
        for n in 0..=MAX_NAMES {
            secrets.seen("team", &n.to_string(), &at("1"));
        }
        let begun = std::time::Instant::now();
        secrets.settled(Duration::from_secs(30)).await;
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "past the bound, waiting for the list helps nothing"
        );
    }

    #[test]
    fn a_token_that_asks_for_no_renewal_does_not_care_which_request_the_secret_answered_last() {
        let secrets = listed(&[]);
        let answered = Some("2026-12-04T10:00:00Z");
        secrets.seen("team", "build", &output("5", "r1", answered));
        assert!(secrets.unchanged("team", "build", &output("5", "r1", None)));
        assert!(secrets.unchanged("team", "build", &output("5", "r1", answered)));
        let asked_again = Some("2026-12-04T11:00:00Z");
        assert!(!secrets.unchanged("team", "build", &output("5", "r1", asked_again)));
    }

    #[tokio::test]
    async fn a_list_that_takes_long_delays_each_look_only_until_the_limit_after_it_began() {
        let secrets = SecretNames::default();
        secrets.listing();
        secrets.settled(Duration::from_millis(200)).await;
        let begun = std::time::Instant::now();
        secrets.settled(Duration::from_millis(200)).await;
        assert!(
            begun.elapsed() < Duration::from_millis(150),
            "the list began more than the limit ago: no more waiting"
        );
    }
}
