//! The object store: plain data, no I/O.
//!
//! Objects are JSON values kept per [`GroupResource`] in a `BTreeMap` ordered by (namespace,
//! name), each with its serialized bytes so reads and watch fan-out never re-serialize. Every
//! write takes the next cluster-wide resourceVersion and appends a [`Change`] to a bounded
//! history that watches replay from; the same change is broadcast to running watches.
//!
//! Indexes kept on every write (so no write scans all objects): uid → object, owner uid →
//! dependents (garbage collection), namespace → object count (namespace termination).
//! The verb semantics on top of these primitives live in `objects/lifecycle.rs`.

pub(super) mod meta;
pub(super) mod resources;

use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::request::FieldValidation;
use bytes::Bytes;
use meta::IdGen;
use resources::{GroupResource, Registry};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// An object as stored: the value and its JSON encoding.
#[derive(Debug)]
pub struct StoredObject {
    /// The object.
    pub value: Value,
    /// `serde_json::to_vec(&value)`.
    pub json: Bytes,
}

/// A shared stored object.
pub type Obj = Arc<StoredObject>;

impl StoredObject {
    fn new(value: Value) -> Obj {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Arc::new(StoredObject { value, json })
    }
}

/// (namespace, name); the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

/// What a change did, as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// `ADDED`
    Added,
    /// `MODIFIED`
    Modified,
    /// `DELETED`
    Deleted,
}

/// One committed write.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion the write took.
    pub rv: u64,
    /// Which resource.
    pub resource: GroupResource,
    /// What happened.
    pub kind: ChangeType,
    /// The object after the write (for deletes: its final state).
    pub object: Obj,
    /// The object before the write, for updates (watches with selectors need it).
    pub previous: Option<Obj>,
}

/// Changes to replay and the subscription for what follows them.
pub type Subscription = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// Store sizing and history options.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How many changes watches can resume from; older resourceVersions get 410 Gone.
    pub history_window: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            history_window: 50_000,
        }
    }
}

/// The emulator's whole state.
#[derive(Debug)]
pub struct Store {
    /// Served resource types (built-ins and CRDs).
    pub registry: Registry,
    pub(super) objects: HashMap<GroupResource, BTreeMap<ObjectKey, Obj>>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    /// Every change with rv > `compacted` is still in `history`.
    compacted: u64,
    window: usize,
    tx: broadcast::Sender<Arc<Change>>,
    pub(super) by_uid: HashMap<String, (GroupResource, ObjectKey)>,
    pub(super) dependents: HashMap<String, HashSet<(GroupResource, ObjectKey)>>,
    pub(super) ns_counts: HashMap<String, usize>,
    pub(super) ids: IdGen,
    /// While true (a `dryRun=All` request), writes are computed and returned but not kept.
    pub(super) dry_run: bool,
    /// The current request's `fieldValidation` directive, for admission.
    pub(super) field_validation: FieldValidation,
}

impl Store {
    /// An empty store serving the built-in kinds (no namespaces yet).
    pub fn new(opts: StoreOptions) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        Store {
            registry: Registry::with_builtins(),
            objects: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted: 0,
            window: opts.history_window.max(1),
            tx,
            by_uid: HashMap::new(),
            dependents: HashMap::new(),
            ns_counts: HashMap::new(),
            ids: IdGen::new(),
            dry_run: false,
            field_validation: Default::default(),
        }
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Looks up one object.
    pub fn get(&self, gr: &GroupResource, key: &ObjectKey) -> Option<Obj> {
        self.objects.get(gr)?.get(key).cloned()
    }

    /// Objects of a resource, optionally in one namespace, in (namespace, name) order, starting
    /// after `after` (a continue position).
    pub fn iter<'a>(
        &'a self,
        gr: &GroupResource,
        namespace: Option<&'a str>,
        after: Option<&ObjectKey>,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Obj)> + 'a {
        use std::ops::Bound;
        let lower = match (after, namespace) {
            (Some(k), _) => Bound::Excluded(k.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        self.objects
            .get(gr)
            .into_iter()
            .flat_map(move |m| m.range((lower.clone(), Bound::Unbounded)))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|want| ns == want))
    }

    /// Number of objects of a resource.
    pub fn count(&self, gr: &GroupResource) -> usize {
        self.objects.get(gr).map_or(0, BTreeMap::len)
    }

    /// Writes an object (create or update), stamping the next resourceVersion.
    pub(super) fn put(&mut self, gr: &GroupResource, key: ObjectKey, mut value: Value) -> Obj {
        if self.dry_run {
            return StoredObject::new(value);
        }
        self.rv += 1;
        meta::meta_mut(&mut value)
            .insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let obj = StoredObject::new(value);
        let previous = self
            .objects
            .entry(gr.clone())
            .or_default()
            .insert(key.clone(), obj.clone());
        self.index(gr, &key, previous.as_ref(), Some(&obj));
        let kind = if previous.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.record(gr, kind, obj.clone(), previous);
        obj
    }

    /// Removes an object for good, recording a `DELETED` change with a fresh resourceVersion.
    pub(super) fn remove(&mut self, gr: &GroupResource, key: &ObjectKey) -> Option<Obj> {
        if self.dry_run {
            return self.get(gr, key);
        }
        let old = self.objects.get_mut(gr)?.remove(key)?;
        self.rv += 1;
        let mut value = old.value.clone();
        meta::meta_mut(&mut value)
            .insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let last = StoredObject::new(value);
        self.index(gr, key, Some(&old), None);
        self.record(gr, ChangeType::Deleted, last.clone(), Some(old));
        Some(last)
    }

    fn index(&mut self, gr: &GroupResource, key: &ObjectKey, old: Option<&Obj>, new: Option<&Obj>) {
        let old_owners: HashSet<String> = old
            .map(|o| meta::owner_uids(&o.value))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let new_owners: HashSet<String> = new
            .map(|o| meta::owner_uids(&o.value))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let entry = (gr.clone(), key.clone());
        for gone in old_owners.difference(&new_owners) {
            if let Some(set) = self.dependents.get_mut(gone) {
                set.remove(&entry);
                if set.is_empty() {
                    self.dependents.remove(gone);
                }
            }
        }
        for added in new_owners.difference(&old_owners) {
            self.dependents
                .entry(added.clone())
                .or_default()
                .insert(entry.clone());
        }
        match (old, new) {
            (None, Some(n)) => {
                self.by_uid
                    .insert(meta::meta_str(&n.value, "uid").to_string(), entry);
                if !key.0.is_empty() {
                    *self.ns_counts.entry(key.0.clone()).or_default() += 1;
                }
            }
            (Some(o), None) => {
                self.by_uid.remove(meta::meta_str(&o.value, "uid"));
                if let Some(c) = self.ns_counts.get_mut(&key.0) {
                    *c -= 1;
                    if *c == 0 {
                        self.ns_counts.remove(&key.0);
                    }
                }
            }
            _ => {}
        }
    }

    fn record(&mut self, gr: &GroupResource, kind: ChangeType, object: Obj, previous: Option<Obj>) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: gr.clone(),
            kind,
            object,
            previous,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.window {
            if let Some(c) = self.history.pop_front() {
                self.compacted = c.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(change);
    }

    /// Forgets all history: every watch resuming from any resourceVersion handed out so far
    /// gets 410. The resourceVersion advances once without a change, as a real cluster's
    /// always has by the time it compacts, so even a watcher that saw the latest change is
    /// behind the compaction.
    pub fn compact(&mut self) {
        self.history.clear();
        self.rv += 1;
        self.compacted = self.rv;
    }

    /// Changes after `from` plus a subscription to later ones, atomically (no gap, no overlap).
    ///
    /// Fails with 410 Expired when `from` is older than the kept history.
    pub fn subscribe_from(&self, from: u64) -> ApiResult<Subscription> {
        if from < self.compacted {
            return Err(ApiError::expired(from, self.compacted + 1));
        }
        let start = self.history.partition_point(|c| c.rv <= from);
        let past = self.history.range(start..).cloned().collect();
        Ok((past, self.tx.subscribe()))
    }

    /// A subscription to changes after the current resourceVersion.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gr() -> GroupResource {
        GroupResource {
            group: String::new(),
            resource: "configmaps".into(),
        }
    }

    fn cm(ns: &str, name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns, "uid": format!("{ns}-{name}")}})
    }

    #[test]
    fn every_write_takes_the_next_resource_version() {
        let mut s = Store::new(StoreOptions::default());
        let a = s.put(&gr(), ("a".into(), "x".into()), cm("a", "x"));
        let b = s.put(&gr(), ("a".into(), "x".into()), cm("a", "x"));
        assert_eq!(a.value["metadata"]["resourceVersion"], "1");
        assert_eq!(b.value["metadata"]["resourceVersion"], "2");
        let gone = s.remove(&gr(), &("a".into(), "x".into())).unwrap();
        assert_eq!(gone.value["metadata"]["resourceVersion"], "3");
        assert!(!s.by_uid.contains_key("a-x"));
    }

    #[test]
    fn iterating_one_namespace_stops_at_its_end() {
        let mut s = Store::new(StoreOptions::default());
        for (ns, n) in [("a", "1"), ("b", "1"), ("b", "2"), ("c", "1")] {
            s.put(&gr(), (ns.into(), n.into()), cm(ns, n));
        }
        let names: Vec<_> = s
            .iter(&gr(), Some("b"), None)
            .map(|(k, _)| k.1.clone())
            .collect();
        assert_eq!(names, vec!["1", "2"]);
        let after: Vec<_> = s
            .iter(&gr(), None, Some(&("b".into(), "1".into())))
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(after.len(), 2);
        assert_eq!(s.ns_counts["b"], 2);
    }

    #[test]
    fn resuming_from_a_compacted_resource_version_is_expired() {
        let mut s = Store::new(StoreOptions { history_window: 2 });
        for i in 0..5 {
            s.put(&gr(), ("a".into(), i.to_string()), cm("a", &i.to_string()));
        }
        assert_eq!(s.subscribe_from(2).unwrap_err().code, 410);
        let (past, _) = s.subscribe_from(3).unwrap();
        assert_eq!(past.iter().map(|c| c.rv).collect::<Vec<_>>(), vec![4, 5]);
        s.compact();
        assert!(
            s.subscribe_from(5).is_err(),
            "even the latest resourceVersion is behind"
        );
        assert!(s.subscribe_from(6).unwrap().0.is_empty());
    }

    #[test]
    fn owner_references_are_indexed_and_unindexed() {
        let mut s = Store::new(StoreOptions::default());
        let mut v = cm("a", "dep");
        v["metadata"]["ownerReferences"] = json!([{"uid": "owner-1"}]);
        s.put(&gr(), ("a".into(), "dep".into()), v);
        assert_eq!(s.dependents["owner-1"].len(), 1);
        s.put(&gr(), ("a".into(), "dep".into()), cm("a", "dep"));
        assert!(!s.dependents.contains_key("owner-1"));
    }
}
