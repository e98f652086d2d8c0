//! The data of the Secrets that connections read (App keys, client secrets, grants), kept
//! between reconciles so that ten thousand tokens of one connection do not read its key ten
//! thousand times. The Secret metadata watch the controllers already run says when a kept
//! copy is out of date: any event for the Secret with another resourceVersion, its deletion, or
//! the watch starting over drops it. Pure bookkeeping: the reads and the watch are the caller's.
//!
//! Bounded: at most [`MAX_ENTRIES`] Secrets and [`MAX_BYTES`] of data, none larger than
//! [`MAX_SECRET_BYTES`], none older than [`MAX_AGE`] (a watch that is down cannot keep a copy
//! forever); what does not fit is read each time, as without the cache. A tenant cannot grow
//! the operator by pointing connections at many or large Secrets.
//!
//! One read at a time per Secret: while a read is on its way, others who need the same Secret
//! wait for its answer ([`Lookup::Wait`]) instead of reading it too; a restart's ten thousand
//! reconciles of one connection's tokens read its key once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most Secrets kept.
pub const MAX_ENTRIES: usize = 512;
/// The most data kept, all Secrets together.
pub const MAX_BYTES: usize = 4 << 20;
/// The largest Secret kept.
pub const MAX_SECRET_BYTES: usize = 64 << 10;
/// The longest a copy is used without being read again.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// A Secret's namespace and name.
type Key = (String, String);

/// A Secret's data and the digest of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    /// The Secret's data, `data` and `stringData` merged.
    pub data: BTreeMap<String, Vec<u8>>,
    /// The digest the connection hash records for it.
    pub digest: String,
}

enum Entry {
    /// A read is on its way; `stale` once the watch reported a change meanwhile (the answer
    /// may then predate it, and is not kept). `done` is dropped when the read's answer is
    /// stored or given up, which wakes those waiting for it.
    Reading {
        stale: bool,
        done: tokio::sync::watch::Sender<()>,
    },
    Held {
        resource_version: String,
        kept: Kept,
        bytes: usize,
        read_at: Instant,
    },
}

/// Kept Secret data, invalidated by the Secret watch.
#[derive(Default)]
pub struct SecretCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

/// What a read of a Secret should do.
#[derive(Debug)]
pub enum Lookup {
    /// The kept copy is current.
    Hit(Kept),
    /// Read it; hand the answer to [`SecretCache::store`].
    Miss,
    /// Another read of it is on its way: its end changes (or closes) this receiver; look up
    /// again then.
    Wait(tokio::sync::watch::Receiver<()>),
}

impl PartialEq for Lookup {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Hit(a), Self::Hit(b)) => a == b,
            (Self::Miss, Self::Miss) | (Self::Wait(_), Self::Wait(_)) => true,
            _ => false,
        }
    }
}

fn reading() -> Entry {
    Entry::Reading {
        stale: false,
        done: tokio::sync::watch::Sender::new(()),
    }
}

impl SecretCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The kept copy of Secret `namespace/name`; a wait when another read of it is on its
    /// way; or a miss (from then on, a change the watch reports before [`Self::store`] keeps
    /// the answer out, and others wait for that answer).
    pub fn lookup(&self, namespace: &str, name: &str, now: Instant) -> Lookup {
        let mut entries = self.lock();
        let key = (namespace.to_string(), name.to_string());
        match entries.get(&key) {
            Some(Entry::Held { kept, read_at, .. })
                if now.saturating_duration_since(*read_at) < MAX_AGE =>
            {
                return Lookup::Hit(kept.clone());
            }
            Some(Entry::Reading { done, .. }) => return Lookup::Wait(done.subscribe()),
            _ => {}
        }
        if entries.len() < MAX_ENTRIES || entries.contains_key(&key) {
            entries.insert(key, reading());
        }
        Lookup::Miss
    }

    /// Keeps what a read after a miss returned (`None`: the Secret is absent, nothing is kept),
    /// unless the watch reported a change since the miss or it does not fit.
    pub fn store(&self, namespace: &str, name: &str, found: Option<(&str, &Kept)>, now: Instant) {
        let mut entries = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let Some(Entry::Reading { stale: false, .. }) = entries.get(&key) else {
            if matches!(entries.get(&key), Some(Entry::Reading { .. })) {
                entries.remove(&key);
            }
            return;
        };
        let Some((resource_version, kept)) = found else {
            entries.remove(&key);
            return;
        };
        let bytes: usize = (kept.data.iter())
            .map(|(k, v)| k.len().saturating_add(v.len()))
            .fold(0, usize::saturating_add);
        let held: usize = (entries.values())
            .map(|e| match e {
                Entry::Held { bytes, .. } => *bytes,
                Entry::Reading { .. } => 0,
            })
            .fold(0, usize::saturating_add);
        if bytes > MAX_SECRET_BYTES || held.saturating_add(bytes) > MAX_BYTES {
            entries.remove(&key);
            return;
        }
        entries.insert(
            key,
            Entry::Held {
                resource_version: resource_version.to_string(),
                kept: kept.clone(),
                bytes,
                read_at: now,
            },
        );
    }

    /// The watch saw Secret `namespace/name` at `resource_version` (`None`: deleted): a copy
    /// of another version is dropped, a read on its way is not kept.
    pub fn observe(&self, namespace: &str, name: &str, resource_version: Option<&str>) {
        let mut entries = self.lock();
        let key = (namespace.to_string(), name.to_string());
        match entries.get_mut(&key) {
            Some(Entry::Held {
                resource_version: held,
                ..
            }) if resource_version == Some(held.as_str()) => {}
            Some(Entry::Reading { stale, .. }) => *stale = true,
            Some(Entry::Held { .. }) => {
                entries.remove(&key);
            }
            None => {}
        }
    }

    /// Forgets Secret `namespace/name`: the operator just wrote it.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.observe(namespace, name, None);
    }

    /// The watch starts over (it may have missed deletions): nothing kept is trusted.
    pub fn clear(&self) {
        let mut entries = self.lock();
        entries.retain(|_, e| matches!(e, Entry::Reading { .. }));
        for entry in entries.values_mut() {
            if let Entry::Reading { stale, .. } = entry {
                *stale = true;
            }
        }
    }

    /// How many Secrets are kept now.
    pub fn len(&self) -> usize {
        (self.lock().values())
            .filter(|e| matches!(e, Entry::Held { .. }))
            .count()
    }

    /// Whether no Secret is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(value: &str) -> Kept {
        Kept {
            data: BTreeMap::from([("key".to_string(), value.as_bytes().to_vec())]),
            digest: format!("digest of {value}"),
        }
    }

    fn read(cache: &SecretCache, rv: &str, value: &str, now: Instant) {
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Miss);
        cache.store("ci", "app-key", Some((rv, &kept(value))), now);
    }

    #[test]
    fn a_secret_read_once_is_answered_from_memory_until_the_watch_reports_another_version() {
        let (cache, now) = (SecretCache::default(), Instant::now());
        read(&cache, "5", "one", now);
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Hit(kept("one")));
        cache.observe("ci", "app-key", Some("5"));
        assert_eq!(
            cache.lookup("ci", "app-key", now),
            Lookup::Hit(kept("one")),
            "the watch reporting the version held changes nothing"
        );
        cache.observe("ci", "app-key", Some("6"));
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Miss);
    }

    #[test]
    fn a_change_reported_while_a_read_is_on_its_way_keeps_its_answer_out() {
        let (cache, now) = (SecretCache::default(), Instant::now());
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Miss);
        cache.observe("ci", "app-key", Some("6"));
        cache.store("ci", "app-key", Some(("5", &kept("old"))), now);
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Miss);
    }

    #[test]
    fn a_deleted_secret_a_written_one_and_a_restarted_watch_are_read_again() {
        let (cache, now) = (SecretCache::default(), Instant::now());
        read(&cache, "5", "one", now);
        cache.observe("ci", "app-key", None);
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Miss);
        cache.store("ci", "app-key", Some(("7", &kept("two"))), now);
        cache.forget("ci", "app-key");
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Miss);
        cache.store("ci", "app-key", Some(("8", &kept("three"))), now);
        cache.clear();
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Miss);
    }

    #[test]
    fn while_a_secret_is_being_read_others_wait_for_that_read_instead_of_reading_it_too() {
        let (cache, now) = (SecretCache::default(), Instant::now());
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Miss);
        let Lookup::Wait(waiting) = cache.lookup("ci", "app-key", now) else {
            panic!("a second reader should wait for the first");
        };
        assert!(waiting.has_changed().is_ok(), "not woken before the answer");
        cache.store("ci", "app-key", Some(("5", &kept("one"))), now);
        assert!(
            waiting.has_changed().is_err(),
            "the answer wakes the waiter"
        );
        assert_eq!(cache.lookup("ci", "app-key", now), Lookup::Hit(kept("one")));
    }

    #[test]
    fn a_read_that_found_nothing_or_failed_wakes_its_waiters_who_then_read_themselves() {
        let (cache, now) = (SecretCache::default(), Instant::now());
        assert_eq!(cache.lookup("ci", "gone", now), Lookup::Miss);
        let Lookup::Wait(waiting) = cache.lookup("ci", "gone", now) else {
            panic!("a second reader should wait for the first");
        };
        cache.store("ci", "gone", None, now);
        assert!(waiting.has_changed().is_err());
        assert_eq!(cache.lookup("ci", "gone", now), Lookup::Miss);
        let Lookup::Wait(stale) = cache.lookup("ci", "gone", now) else {
            panic!("the new read is waited for too");
        };
        cache.clear();
        assert!(
            stale.has_changed().is_ok(),
            "a restarted watch does not end a read"
        );
        cache.store("ci", "gone", Some(("1", &kept("late"))), now);
        assert!(stale.has_changed().is_err());
        assert_eq!(
            cache.lookup("ci", "gone", now),
            Lookup::Miss,
            "an answer begun before the watch restarted is not kept"
        );
    }

    #[test]
    fn a_copy_older_than_the_longest_age_is_read_again() {
        let (cache, now) = (SecretCache::default(), Instant::now());
        read(&cache, "5", "one", now);
        assert_eq!(cache.lookup("ci", "app-key", now + MAX_AGE), Lookup::Miss);
    }

    #[test]
    fn an_absent_secret_is_not_kept() {
        let (cache, now) = (SecretCache::default(), Instant::now());
        assert_eq!(cache.lookup("ci", "gone", now), Lookup::Miss);
        cache.store("ci", "gone", None, now);
        assert!(cache.is_empty());
    }

    #[test]
    fn large_secrets_and_more_than_the_bounds_are_read_each_time() {
        let (cache, now) = (SecretCache::default(), Instant::now());
        let big = Kept {
            data: BTreeMap::from([("k".into(), vec![0; MAX_SECRET_BYTES + 1])]),
            digest: String::new(),
        };
        assert_eq!(cache.lookup("ci", "big", now), Lookup::Miss);
        cache.store("ci", "big", Some(("1", &big)), now);
        assert!(cache.is_empty(), "one Secret over the size bound");
        let piece = Kept {
            data: BTreeMap::from([("k".into(), vec![0; MAX_SECRET_BYTES - 1])]),
            digest: String::new(),
        };
        for i in 0..MAX_ENTRIES {
            let name = format!("s{i}");
            if cache.lookup("ci", &name, now) == Lookup::Miss {
                cache.store("ci", &name, Some(("1", &piece)), now);
            }
        }
        assert_eq!(
            cache.len(),
            MAX_BYTES / MAX_SECRET_BYTES,
            "held to the byte bound"
        );
        for i in 0..MAX_ENTRIES * 2 {
            let _ = cache.lookup("ci", &format!("t{i}"), now);
        }
        assert!(cache.lock().len() <= MAX_ENTRIES, "held to the entry bound");
    }
}
