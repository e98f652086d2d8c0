//! Which Secrets exist, as the Secret metadata watch the controllers already run reports them,
//! so that a token's first mint need not read its output Secret only to learn that it is not
//! there yet. Pure bookkeeping: the watch is the caller's.
//!
//! Only a complete answer counts: until the watch's list has ended (and again while it lists
//! anew) nothing is known to be absent, and the caller reads as before. A Secret that the watch
//! has not brought yet looks absent for a moment; the caller only ever creates on that answer,
//! which the API server refuses over an existing Secret (the write then reads it and never
//! overwrites a Secret patchbay does not own).
//!
//! Lean and bounded: a keyed 64-bit digest per Secret (no names kept; a collision only costs a
//! read), at most [`MAX_NAMES`] of them; past that everything is forgotten until the next list,
//! which costs reads, nothing else.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

/// The most Secrets remembered (about 4 MiB of digests at most).
pub const MAX_NAMES: usize = 262_144;

#[derive(Default)]
struct State {
    digests: HashSet<u64>,
    /// A list has ended and nothing was forgotten since.
    complete: bool,
    /// Past [`MAX_NAMES`]: nothing is remembered until the next list.
    forgotten: bool,
}

/// The Secrets of the cluster, by digest of namespace and name.
#[derive(Default)]
pub struct SecretNames {
    keys: RandomState,
    state: Mutex<State>,
}

impl SecretNames {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn digest(&self, namespace: &str, name: &str) -> u64 {
        self.keys.hash_one((namespace, name))
    }

    /// The watch starts a list: nothing is known until it ends.
    pub fn listing(&self) {
        *self.lock() = State::default();
    }

    /// The watch reports Secret `namespace/name` (listed, created or changed).
    pub fn seen(&self, namespace: &str, name: &str) {
        let digest = self.digest(namespace, name);
        let mut state = self.lock();
        if state.digests.len() >= MAX_NAMES {
            // Forget all until the next list: absent is then never answered.
            *state = State {
                forgotten: true,
                ..State::default()
            };
        }
        if !state.forgotten {
            state.digests.insert(digest);
        }
    }

    /// The watch reports Secret `namespace/name` deleted.
    pub fn deleted(&self, namespace: &str, name: &str) {
        let digest = self.digest(namespace, name);
        self.lock().digests.remove(&digest);
    }

    /// The watch's list has ended: from now on a Secret it has not reported is absent.
    pub fn listed(&self) {
        let mut state = self.lock();
        state.complete = !state.forgotten;
    }

    /// Forgets everything (a new leadership term starts its own watch).
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// Whether Secret `namespace/name` is known not to exist: the watch's list is complete and
    /// has not reported it.
    pub fn absent(&self, namespace: &str, name: &str) -> bool {
        let digest = self.digest(namespace, name);
        let state = self.lock();
        state.complete && !state.digests.contains(&digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(names: &[(&str, &str)]) -> SecretNames {
        let secrets = SecretNames::default();
        secrets.listing();
        for (ns, name) in names {
            secrets.seen(ns, name);
        }
        secrets.listed();
        secrets
    }

    #[test]
    fn nothing_is_absent_before_the_first_list_has_ended() {
        let secrets = SecretNames::default();
        assert!(!secrets.absent("team", "build"));
        secrets.listing();
        secrets.seen("team", "other");
        assert!(!secrets.absent("team", "build"), "the list is still going");
        secrets.listed();
        assert!(secrets.absent("team", "build"));
    }

    #[test]
    fn a_listed_or_created_secret_is_present_until_it_is_deleted() {
        let secrets = listed(&[("team", "key")]);
        assert!(!secrets.absent("team", "key"));
        secrets.seen("team", "build");
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
            secrets.seen("team", &n.to_string());
        }
        assert!(secrets.absent("team", "unseen"));
        secrets.seen("team", "one-more");
        assert!(!secrets.absent("team", "unseen"));
        assert!(secrets.lock().digests.len() <= 1, "the digests are freed");
        secrets.listing();
        secrets.listed();
        assert!(secrets.absent("team", "unseen"));
    }
}
