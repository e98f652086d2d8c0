//! Tokens waiting for their connection's share of provider calls
//! ([`super::context::CALLS_PER_CONNECTION`]): each is woken when a call of that connection
//! ends, first come first served, instead of looking again on a timer. Thousands of new tokens
//! of one connection then mint as fast as the connection's calls finish, and cost no reconcile
//! while they wait. A wake-up that is lost (a leadership term ended) costs only time: a waiting
//! token is also looked at again after [`super::pipeline`]'s fallback delay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use futures::Stream;
use tokio::sync::mpsc;

/// A token: its namespace and name.
pub type TokenKey = (String, String);

/// The key of `token`.
pub fn key_of(token: &crate::api::VcsAuthToken) -> TokenKey {
    let meta = &token.metadata;
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// How many woken tokens are remembered until they come back for their call.
const MAX_WOKEN: usize = 4096;

#[derive(Default)]
struct State {
    /// Per connection, the tokens waiting for one of its calls, oldest first.
    queues: HashMap<String, VecDeque<TokenKey>>,
    /// Every token in some queue (a token waits once).
    queued: HashSet<TokenKey>,
    /// Tokens woken for a call that have not come back for it yet. One that finds every call
    /// taken again (several were woken for the calls that ended together) waits at the front,
    /// not behind the tokens that came after it.
    woken: HashSet<TokenKey>,
    /// Where wake-ups go: the token controller of the current leadership term.
    wake: Option<mpsc::UnboundedSender<TokenKey>>,
}

/// Wakes `token` through the current term's channel, if a term is running.
fn send(wake: &Option<mpsc::UnboundedSender<TokenKey>>, token: TokenKey) {
    if let Some(wake) = wake {
        let _ = wake.send(token);
    }
}

/// The tokens waiting for a call of their connection.
#[derive(Default)]
pub struct Waiting {
    state: Mutex<State>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The wake-ups from now on (the stream of an earlier term ends); what waited before is
    /// forgotten: the new term looks at every token anyway.
    pub fn subscribe(&self) -> impl Stream<Item = TokenKey> + Send + 'static {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.lock();
        *state = State {
            wake: Some(tx),
            ..State::default()
        };
        futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|k| (k, rx)) })
    }

    /// Token `token` waits for a call of `connection`: behind the tokens waiting already, or
    /// ahead of them when it was woken for a call and found it taken.
    pub fn wait(&self, connection: &str, token: TokenKey) {
        let mut state = self.lock();
        let front = state.woken.remove(&token);
        if state.queued.insert(token.clone()) {
            let queue = state.queues.entry(connection.to_string()).or_default();
            match front {
                true => queue.push_front(token),
                false => queue.push_back(token),
            }
        }
    }

    /// A call of `connection` ended and `free` of its calls are free: as many of the tokens
    /// that have waited longest for one are woken (one woken that no longer needs a call
    /// leaves its place to the next wake-up; one that already left is passed over).
    pub fn call_ended(&self, connection: &str, free: usize) {
        let mut state = self.lock();
        let State {
            queues,
            queued,
            woken: was_woken,
            wake,
        } = &mut *state;
        let Some(queue) = queues.get_mut(connection) else {
            return;
        };
        let mut woken = 0;
        while woken < free {
            let Some(token) = queue.pop_front() else {
                break;
            };
            if queued.remove(&token) {
                if was_woken.len() >= MAX_WOKEN {
                    // Tokens woken that never came back (deleted meanwhile) are not kept
                    // without bound; forgetting them costs only their place in the queue.
                    was_woken.clear();
                }
                was_woken.insert(token.clone());
                send(wake, token);
                woken += 1;
            }
        }
        if queue.is_empty() {
            queues.remove(connection);
        }
    }

    /// Token `token` no longer waits: it got a call another way (its fallback timer ran it
    /// while a call was free). Its place is passed over, so that it is not woken again after it
    /// minted; once nobody waits, the queues are dropped.
    pub fn leave(&self, token: &TokenKey) {
        let mut state = self.lock();
        state.woken.remove(token);
        state.queued.remove(token);
        if state.queued.is_empty() {
            // Nobody waits: every place left behind, and every woken token that never came
            // back (it needed no call after all), is dropped.
            state.queues.clear();
            state.woken.clear();
        }
    }

    /// Wakes `token` now, whether it waits or not (its Secret changed while it wrote it).
    pub fn wake(&self, token: TokenKey) {
        send(&self.lock().wake, token);
    }

    /// How many tokens wait, all connections together.
    pub fn len(&self) -> usize {
        self.lock().queued.len()
    }

    /// Whether no token waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn token(name: &str) -> TokenKey {
        ("team".to_string(), name.to_string())
    }

    #[tokio::test]
    async fn the_token_that_waited_longest_for_a_connection_is_woken_when_one_of_its_calls_ends() {
        let waiting = Waiting::default();
        let mut woken = Box::pin(waiting.subscribe());
        waiting.wait("ci/acme", token("first"));
        waiting.wait("ci/other", token("elsewhere"));
        waiting.wait("ci/acme", token("second"));
        waiting.wait("ci/acme", token("first"));
        assert_eq!(waiting.len(), 3, "a token waits once");
        waiting.call_ended("ci/acme", 1);
        assert_eq!(woken.next().await, Some(token("first")));
        waiting.call_ended("ci/acme", 3);
        assert_eq!(woken.next().await, Some(token("second")));
        assert_eq!(
            waiting.len(),
            1,
            "only the other connection's token still waits"
        );
        waiting.call_ended("ci/acme", 1);
        assert_eq!(
            waiting.len(),
            1,
            "a connection nobody waits for wakes nobody"
        );
    }

    #[tokio::test]
    async fn a_token_that_got_a_call_another_way_is_passed_over_and_the_next_is_woken() {
        let waiting = Waiting::default();
        let mut woken = Box::pin(waiting.subscribe());
        waiting.wait("ci/acme", token("first"));
        waiting.wait("ci/acme", token("second"));
        waiting.leave(&token("first"));
        assert_eq!(waiting.len(), 1);
        waiting.call_ended("ci/acme", 1);
        assert_eq!(woken.next().await, Some(token("second")));
        assert!(waiting.is_empty());
    }

    #[test]
    fn once_nobody_waits_the_places_left_behind_are_dropped() {
        let waiting = Waiting::default();
        let _woken = waiting.subscribe();
        waiting.wait("ci/acme", token("first"));
        waiting.wait("ci/other", token("second"));
        waiting.leave(&token("first"));
        assert_eq!(waiting.lock().queues.len(), 2, "someone still waits");
        waiting.leave(&token("second"));
        assert!(waiting.lock().queues.is_empty());
    }

    #[tokio::test]
    async fn a_token_that_left_and_waits_again_is_woken_once() {
        let waiting = Waiting::default();
        let mut woken = Box::pin(waiting.subscribe());
        waiting.wait("ci/acme", token("first"));
        waiting.wait("ci/acme", token("second"));
        waiting.leave(&token("first"));
        waiting.wait("ci/acme", token("first"));
        waiting.call_ended("ci/acme", 3);
        assert_eq!(woken.next().await, Some(token("first")));
        assert_eq!(woken.next().await, Some(token("second")));
        assert!(waiting.is_empty());
        waiting.call_ended("ci/acme", 3);
        drop(waiting);
        assert_eq!(woken.next().await, None, "nobody is woken twice");
    }

    #[tokio::test]
    async fn a_token_woken_for_a_call_another_took_waits_ahead_of_those_that_came_after_it() {
        let waiting = Waiting::default();
        let mut woken = Box::pin(waiting.subscribe());
        for name in ["first", "second"] {
            waiting.wait("ci/acme", token(name));
        }
        waiting.call_ended("ci/acme", 1);
        assert_eq!(woken.next().await, Some(token("first")));
        // Meanwhile a token whose retry came due took the call, and "third" began to wait.
        waiting.wait("ci/acme", token("third"));
        waiting.wait("ci/acme", token("first"));
        waiting.call_ended("ci/acme", 1);
        assert_eq!(
            woken.next().await,
            Some(token("first")),
            "it kept its place"
        );
        waiting.call_ended("ci/acme", 2);
        assert_eq!(woken.next().await, Some(token("second")));
        assert_eq!(woken.next().await, Some(token("third")));
    }

    #[tokio::test]
    async fn a_new_term_forgets_who_waited_and_ends_the_old_wake_ups() {
        let waiting = Waiting::default();
        let mut old = Box::pin(waiting.subscribe());
        waiting.wait("ci/acme", token("first"));
        let _new = waiting.subscribe();
        assert!(waiting.is_empty());
        waiting.call_ended("ci/acme", 1);
        assert_eq!(old.next().await, None);
    }
}
