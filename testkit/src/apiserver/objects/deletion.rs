//! Deletion and what follows from it: finalizers, namespace termination, CRD deletion, and
//! ownerReference garbage collection (background, foreground and orphan propagation).

use super::crd;
use super::lifecycle::{DeleteOptions, Deleted, namespaces, subject};
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::store::meta::{self, meta_mut, meta_str};
use crate::apiserver::store::resources::{GroupResource, ResourceInfo};
use crate::apiserver::store::{Obj, ObjectKey, Store};
use serde_json::{Value, json};

/// The finalizer that keeps an owner deleted with `propagationPolicy: Foreground` until its
/// dependents are gone.
const FOREGROUND: &str = "foregroundDeletion";

/// The namespaces the real server's NamespaceLifecycle admission refuses to delete.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

impl Store {
    /// Deletes an object: at once, or by marking it when finalizers are pending.
    pub fn delete(
        &mut self,
        ri: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        let current = self.get_object(ri, ns, name)?;
        let subj = subject(ri, name);
        if ri.group_resource() == namespaces() && IMMORTAL_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden(
                subj,
                "this namespace may not be deleted",
            ));
        }
        if let Some(uid) = opts
            .uid
            .as_deref()
            .filter(|u| *u != meta_str(&current.value, "uid"))
        {
            let why = format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta_str(&current.value, "uid")
            );
            return Err(ApiError::conflict(subj, &why));
        }
        if let Some(rv) = opts
            .resource_version
            .as_deref()
            .filter(|r| *r != meta_str(&current.value, "resourceVersion"))
        {
            let why = format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(&current.value, "resourceVersion")
            );
            return Err(ApiError::conflict(subj, &why));
        }
        let gr = ri.group_resource();
        if opts.orphan {
            self.orphan_dependents(meta_str(&current.value, "uid"));
        }
        let key: ObjectKey = (ns.to_string(), name.to_string());
        let uid = meta_str(&current.value, "uid");
        let foreground = opts.foreground && self.dependents.get(uid).is_some_and(|d| !d.is_empty());
        let extra = foreground.then_some(FOREGROUND);
        Ok(self.delete_key_with(&gr, &key, extra).unwrap_or(Deleted {
            object: current,
            pending: false,
        }))
    }

    /// Deletes by key, honouring finalizers and the namespace / CRD cascades.
    fn delete_key(&mut self, gr: &GroupResource, key: &ObjectKey) -> Option<Deleted> {
        self.delete_key_with(gr, key, None)
    }

    /// Deletes by key, adding `extra` to the finalizers when marking (foreground deletion).
    fn delete_key_with(
        &mut self,
        gr: &GroupResource,
        key: &ObjectKey,
        extra: Option<&str>,
    ) -> Option<Deleted> {
        let current = self.get(gr, key)?;
        let is_ns = *gr == namespaces();
        let is_crd =
            gr.group == "apiextensions.k8s.io" && gr.resource == "customresourcedefinitions";
        let contents = is_ns || is_crd;
        if meta::is_deleting(&current.value) {
            return Some(Deleted {
                object: current,
                pending: true,
            });
        }
        let mut finalizers = meta::finalizers(&current.value);
        if let Some(f) = extra.filter(|f| !finalizers.iter().any(|x| x == f)) {
            finalizers.push(f.to_string());
        }
        if finalizers.is_empty() && !contents {
            return self.finish_removal(gr, key).map(|object| Deleted {
                object,
                pending: false,
            });
        }
        let mut v = current.value.clone();
        let m = meta_mut(&mut v);
        m.insert("deletionTimestamp".into(), json!(meta::now()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        if !finalizers.is_empty() {
            m.insert("finalizers".into(), json!(finalizers));
        }
        if let Some(g) = m.get("generation").and_then(Value::as_i64) {
            m.insert("generation".into(), json!(g + 1));
        }
        if is_ns {
            if !v.get("status").is_some_and(Value::is_object) {
                v["status"] = json!({});
            }
            v["status"]["phase"] = json!("Terminating");
        }
        let marked = self.put(gr, key.clone(), v);
        if is_ns {
            self.delete_namespace_contents(&key.1);
            self.maybe_finish_namespace(&key.1);
        } else if is_crd {
            for served in crd::served_resources(&marked.value) {
                let keys: Vec<ObjectKey> = self
                    .iter(&served, None, None)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    self.delete_key(&served, &k);
                }
                self.maybe_finish_crd(&served);
            }
        }
        if extra == Some(FOREGROUND) {
            let uid = meta_str(&marked.value, "uid").to_string();
            for (dgr, dkey) in self.dependents.get(&uid).cloned().unwrap_or_default() {
                self.delete_key(&dgr, &dkey);
            }
            self.maybe_finish_foreground(&uid);
        }
        let object = self.get(gr, key).unwrap_or(marked);
        let pending = self.get(gr, key).is_some();
        Some(Deleted { object, pending })
    }

    fn delete_namespace_contents(&mut self, ns: &str) {
        let resources: Vec<GroupResource> = self.objects.keys().cloned().collect();
        for gr in resources {
            let keys: Vec<ObjectKey> = self
                .iter(&gr, Some(ns), None)
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                self.delete_key(&gr, &k);
            }
        }
    }

    /// Removes an object whose finalizers are done, then runs what depends on its absence.
    pub(super) fn finish_removal(&mut self, gr: &GroupResource, key: &ObjectKey) -> Option<Obj> {
        let gone = self.remove(gr, key)?;
        let uid = meta_str(&gone.value, "uid").to_string();
        if let Some(deps) = self.dependents.get(&uid).cloned() {
            for (dgr, dkey) in deps {
                let Some(dep) = self.get(&dgr, &dkey) else {
                    continue;
                };
                if !self.has_live_owner(&dkey.0, &dep) {
                    self.delete_key(&dgr, &dkey);
                }
            }
        }
        for owner in meta::owner_uids(&gone.value) {
            self.maybe_finish_foreground(&owner);
        }
        if !key.0.is_empty() {
            self.maybe_finish_namespace(&key.0);
        }
        if gr.group == "apiextensions.k8s.io" && gr.resource == "customresourcedefinitions" {
            for served in crd::served_resources(&gone.value) {
                if !self.dry_run {
                    self.registry.remove_resource(&served);
                }
            }
        } else if self.registry.any_version(gr).is_some_and(|r| r.custom) {
            self.maybe_finish_crd(gr);
        }
        Some(gone)
    }

    fn maybe_finish_namespace(&mut self, ns: &str) {
        let key: ObjectKey = (String::new(), ns.to_string());
        let Some(n) = self.get(&namespaces(), &key) else {
            return;
        };
        let empty = self.ns_counts.get(ns).copied().unwrap_or(0) == 0;
        if meta::is_deleting(&n.value) && empty && meta::finalizers(&n.value).is_empty() {
            self.finish_removal(&namespaces(), &key);
        }
    }

    fn maybe_finish_crd(&mut self, served: &GroupResource) {
        let crds = crd::crd_resource();
        let key: ObjectKey = (
            String::new(),
            format!("{}.{}", served.resource, served.group),
        );
        let Some(c) = self.get(&crds, &key) else {
            return;
        };
        if meta::is_deleting(&c.value)
            && self.count(served) == 0
            && meta::finalizers(&c.value).is_empty()
        {
            self.finish_removal(&crds, &key);
        }
    }

    fn orphan_dependents(&mut self, uid: &str) {
        let Some(deps) = self.dependents.get(uid).cloned() else {
            return;
        };
        for (gr, key) in deps {
            let Some(dep) = self.get(&gr, &key) else {
                continue;
            };
            let mut v = dep.value.clone();
            if let Some(refs) = v
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            }
            self.put(&gr, key, v);
        }
    }

    /// The garbage collector's view of a dependent just written: when it names owners and none
    /// of them exists (a dangling reference, e.g. the owner was deleted meanwhile), it is
    /// deleted. The real collector does this asynchronously; the write itself still succeeds.
    pub(super) fn collect_if_owners_gone(
        &mut self,
        gr: &GroupResource,
        key: &ObjectKey,
        obj: &Obj,
    ) {
        if !meta::owner_uids(&obj.value).is_empty() && !self.has_live_owner(&key.0, obj) {
            self.delete_key(gr, key);
        }
    }

    /// Whether any owner of a dependent in namespace `ns` exists where the garbage collector
    /// looks for it: cluster-scoped, or in the dependent's own namespace. (An owner in another
    /// namespace counts as absent, so the real collector deletes such dependents.)
    fn has_live_owner(&self, ns: &str, dependent: &Obj) -> bool {
        meta::owner_uids(&dependent.value).iter().any(|u| {
            self.by_uid
                .get(u)
                .is_some_and(|(_, (owner_ns, _))| owner_ns.is_empty() || owner_ns == ns)
        })
    }

    /// Releases an owner deleted in the foreground once no dependents remain.
    fn maybe_finish_foreground(&mut self, owner_uid: &str) {
        if self
            .dependents
            .get(owner_uid)
            .is_some_and(|d| !d.is_empty())
        {
            return;
        }
        let Some((gr, key)) = self.by_uid.get(owner_uid).cloned() else {
            return;
        };
        let Some(owner) = self.get(&gr, &key) else {
            return;
        };
        let finalizers = meta::finalizers(&owner.value);
        if !meta::is_deleting(&owner.value) || !finalizers.iter().any(|f| f == FOREGROUND) {
            return;
        }
        let rest: Vec<String> = finalizers.into_iter().filter(|f| f != FOREGROUND).collect();
        if rest.is_empty() {
            self.finish_removal(&gr, &key);
        } else {
            let mut v = owner.value.clone();
            meta_mut(&mut v).insert("finalizers".into(), json!(rest));
            self.put(&gr, key, v);
        }
    }
}
