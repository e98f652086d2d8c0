//! The operator's own writes of output Secrets, so that the watch event each write causes does
//! not wake the token that made it: the reconcile that wrote the Secret has done what the new
//! version calls for. Pure bookkeeping: the writes and the watch are the caller's.
//!
//! The watch may bring a write's event before the write's own answer arrives (two connections
//! to the API server, no order between them). So a write is announced before it is sent
//! ([`OwnWrites::writing`]); the events that arrive while it is in flight are held back and
//! judged when its answer names the version written ([`OwnWrites::wrote`]): an event of any
//! other version (someone else's edit or deletion) then wakes the token after all.
//!
//! Bounded: at most [`MAX_WRITES`] Secrets remembered (past it all are forgotten, which costs a
//! reconcile each and nothing else), at most [`MAX_HELD`] versions held back per write.

use std::collections::HashMap;
use std::sync::Mutex;

/// The most Secrets remembered at once.
pub const MAX_WRITES: usize = 16_384;
/// The most versions held back during one write; past it the last is replaced (any foreign one
/// already wakes the token).
pub const MAX_HELD: usize = 8;

/// A Secret's namespace and name.
type Key = (String, String);

enum Write {
    /// Sent, no answer yet; the versions the watch brought meanwhile.
    InFlight(Vec<String>),
    /// Answered with this version, which the watch has not brought yet.
    Written(String),
}

/// What happened to a write, for [`OwnWrites::wrote`].
pub enum Outcome<'a> {
    /// The API server stored the Secret at this resourceVersion.
    Stored(&'a str),
    /// The write failed or stored nothing.
    Failed,
}

/// The output Secret writes whose watch events are still to come.
#[derive(Default)]
pub struct OwnWrites {
    writes: Mutex<HashMap<Key, Write>>,
}

impl OwnWrites {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Write>> {
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The operator is about to write Secret `namespace/name`.
    pub fn writing(&self, namespace: &str, name: &str) {
        let mut writes = self.lock();
        if writes.len() >= MAX_WRITES {
            writes.clear();
        }
        let key = (namespace.to_string(), name.to_string());
        writes.insert(key, Write::InFlight(Vec::new()));
    }

    /// The write of Secret `namespace/name` announced by [`Self::writing`] ended. Returns
    /// whether an event held back meanwhile was not the operator's own, so that the token must
    /// look at its Secret again.
    pub fn wrote(&self, namespace: &str, name: &str, outcome: Outcome<'_>) -> bool {
        let mut writes = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let Some(Write::InFlight(held)) = writes.remove(&key) else {
            // Forgotten meanwhile (the bound, a new term): its events woke the token.
            return false;
        };
        match outcome {
            Outcome::Stored(version) if held.is_empty() => {
                writes.insert(key, Write::Written(version.to_string()));
                false
            }
            Outcome::Stored(version) => held.iter().any(|v| v != version),
            Outcome::Failed => !held.is_empty(),
        }
    }

    /// Whether a watch event of Secret `namespace/name` at `version` needs no reconcile: it is
    /// the operator's own last write, or it arrived while a write was in flight (and is judged
    /// when that write ends). Any other event ends the remembering.
    pub fn own(&self, namespace: &str, name: &str, version: &str) -> bool {
        let mut writes = self.lock();
        let key = (namespace.to_string(), name.to_string());
        match writes.get_mut(&key) {
            Some(Write::InFlight(held)) => {
                if held.len() >= MAX_HELD {
                    held.pop();
                }
                held.push(version.to_string());
                true
            }
            Some(Write::Written(own)) => {
                let own = own == version;
                writes.remove(&key);
                own
            }
            None => false,
        }
    }

    /// Forgets every write (a new leadership term: the watch starts over).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_of_a_write_that_arrives_after_its_answer_wakes_no_token() {
        let writes = OwnWrites::default();
        writes.writing("team", "build");
        assert!(!writes.wrote("team", "build", Outcome::Stored("7")));
        assert!(writes.own("team", "build", "7"));
        assert!(
            !writes.own("team", "build", "8"),
            "a later edit wakes the token"
        );
    }

    #[test]
    fn the_event_of_a_write_that_arrives_before_its_answer_wakes_no_token() {
        let writes = OwnWrites::default();
        writes.writing("team", "build");
        assert!(writes.own("team", "build", "7"), "held back");
        assert!(!writes.wrote("team", "build", Outcome::Stored("7")));
        assert!(
            !writes.own("team", "build", "8"),
            "a later edit wakes the token"
        );
    }

    #[test]
    fn an_edit_or_deletion_by_someone_else_during_a_write_wakes_the_token_when_it_ends() {
        let writes = OwnWrites::default();
        writes.writing("team", "build");
        assert!(writes.own("team", "build", "7"));
        assert!(writes.own("team", "build", "8"));
        assert!(writes.wrote("team", "build", Outcome::Stored("7")));

        writes.writing("team", "build");
        assert!(writes.own("team", "build", "9"));
        assert!(
            writes.wrote("team", "build", Outcome::Failed),
            "a failed write stored nothing: what arrived is someone else's"
        );
    }

    #[test]
    fn a_failed_write_with_no_event_meanwhile_wakes_nothing_and_remembers_nothing() {
        let writes = OwnWrites::default();
        writes.writing("team", "build");
        assert!(!writes.wrote("team", "build", Outcome::Failed));
        assert!(!writes.own("team", "build", "7"));
    }

    #[test]
    fn secrets_of_the_same_name_in_other_namespaces_are_apart() {
        let writes = OwnWrites::default();
        writes.writing("team-a", "build");
        assert!(!writes.own("team-b", "build", "7"));
        assert!(!writes.wrote("team-a", "build", Outcome::Stored("8")));
        assert!(!writes.own("team-b", "build", "8"));
        assert!(writes.own("team-a", "build", "8"));
    }

    #[test]
    fn many_events_during_one_write_hold_a_bounded_list_and_still_wake_the_token() {
        let writes = OwnWrites::default();
        writes.writing("team", "build");
        for v in 0..100 {
            assert!(writes.own("team", "build", &v.to_string()));
        }
        assert!(writes.wrote("team", "build", Outcome::Stored("99")));
    }

    #[test]
    fn past_the_bound_every_write_is_forgotten_and_costs_only_a_reconcile() {
        let writes = OwnWrites::default();
        for n in 0..MAX_WRITES {
            writes.writing("team", &n.to_string());
        }
        writes.writing("team", "one-more");
        assert!(!writes.wrote("team", "0", Outcome::Stored("1")));
        assert!(!writes.own("team", "0", "1"));
        assert!(!writes.wrote("team", "one-more", Outcome::Stored("1")));
        assert!(writes.own("team", "one-more", "1"));
    }
}
