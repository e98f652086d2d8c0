//! Verb semantics over the store: create, update, delete, and what follows from them —
//! generation, status isolation, finalizers, namespace termination, garbage collection and CRD
//! registration. Pure: no I/O, no clock except timestamps.

use super::admit;
use super::builtins;
use super::crd;
use super::crd_validation;
use super::fields;
use super::validation;
use crate::apiserver::error::{ApiError, ApiResult, Subject};
use crate::apiserver::store::meta::{self, meta_mut, meta_str};
use crate::apiserver::store::resources::{GroupResource, ResourceInfo};
use crate::apiserver::store::{Obj, ObjectKey, Store};
use serde_json::{Value, json};

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: status changes are ignored when a status subresource exists.
    Main,
    /// The `/status` subresource: only status changes are kept.
    Status,
}

/// How `managedFields` are maintained for a write.
#[derive(Debug, Clone, Copy)]
pub enum Manager<'a> {
    /// A create/update/patch by this field manager (operation `Update`).
    Update(&'a str),
    /// Server-side apply already computed `managedFields` on the object.
    Precomputed,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `preconditions.uid`
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`
    pub resource_version: Option<String>,
    /// `Orphan` strips owner references from dependents instead of deleting them.
    pub orphan: bool,
    /// `Foreground` keeps the object (finalizer `foregroundDeletion`) until its dependents are
    /// gone.
    pub foreground: bool,
}

/// Result of a delete.
#[derive(Debug)]
pub struct Deleted {
    /// The object: its final state, or its state with a deletionTimestamp.
    pub object: Obj,
    /// True when finalizers keep the object around.
    pub pending: bool,
}

pub(in crate::apiserver) fn subject<'a>(ri: &'a ResourceInfo, name: &'a str) -> Subject<'a> {
    Subject {
        group: &ri.group,
        resource: &ri.plural,
        name,
    }
}

pub(super) fn namespaces() -> GroupResource {
    GroupResource {
        group: String::new(),
        resource: "namespaces".into(),
    }
}

/// Whether two JSON objects are equal apart from the `skip` keys (no cloning: runs per write).
fn equal_except(a: Option<&Value>, b: Option<&Value>, skip: &[&str]) -> bool {
    let empty = serde_json::Map::new();
    let a = a.and_then(Value::as_object).unwrap_or(&empty);
    let b = b.and_then(Value::as_object).unwrap_or(&empty);
    let kept = |m: &serde_json::Map<String, Value>| {
        m.keys().filter(|k| !skip.contains(&k.as_str())).count()
    };
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Whether anything but metadata (and status, when it is a subresource) differs.
fn spec_changed(old: &Value, new: &Value, has_status: bool) -> bool {
    let skip: &[&str] = if has_status {
        &["metadata", "status"]
    } else {
        &["metadata"]
    };
    !equal_except(Some(old), Some(new), skip)
}

/// Equal apart from resourceVersion and managedFields: an update that changes nothing.
fn same_object(a: &Value, b: &Value) -> bool {
    equal_except(Some(a), Some(b), &["metadata"])
        && equal_except(
            a.get("metadata"),
            b.get("metadata"),
            &["resourceVersion", "managedFields"],
        )
}

impl Store {
    /// The object or a 404 Status.
    pub fn get_object(&self, ri: &ResourceInfo, ns: &str, name: &str) -> ApiResult<Obj> {
        self.get(&ri.group_resource(), &(ns.to_string(), name.to_string()))
            .ok_or_else(|| ApiError::not_found(subject(ri, name)))
    }

    fn check_namespace(&self, ri: &ResourceInfo, ns: &str, name: &str) -> ApiResult<()> {
        if !ri.namespaced {
            return Ok(());
        }
        match self.get(&namespaces(), &(String::new(), ns.to_string())) {
            None => Err(ApiError::not_found(Subject {
                group: "",
                resource: "namespaces",
                name: ns,
            })),
            Some(n) if meta::is_deleting(&n.value) => Err(ApiError::forbidden(
                subject(ri, name),
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Creates an object in `ns` ("" for cluster-scoped resources).
    pub fn create(
        &mut self,
        ri: &ResourceInfo,
        ns: &str,
        mut obj: Value,
        manager: Manager<'_>,
    ) -> ApiResult<Obj> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        builtins::decodable(ri, &obj)?;
        let body_ns = meta_str(&obj, "namespace").to_string();
        if ri.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut name = meta_str(&obj, "name").to_string();
        if name.is_empty() && !meta_str(&obj, "generateName").is_empty() {
            name = format!(
                "{}{}",
                meta_str(&obj, "generateName"),
                self.ids.name_suffix()
            );
        }
        if let Some(problem) = meta::invalid_name(&name, ri.kind == "Namespace") {
            return Err(ApiError::invalid(
                &ri.kind,
                subject(ri, &name),
                &[("metadata.name".into(), problem)],
            ));
        }
        if let Some(kind) = obj
            .get("kind")
            .and_then(Value::as_str)
            .filter(|k| *k != ri.kind)
        {
            return Err(ApiError::bad_request(format!(
                "the kind {kind:?} does not match the resource {}",
                ri.plural
            )));
        }
        self.check_namespace(ri, ns, &name)?;
        let key: ObjectKey = (ns.to_string(), name.clone());
        let gr = ri.group_resource();
        if self.get(&gr, &key).is_some() {
            return Err(ApiError::already_exists(subject(ri, &name)));
        }
        obj["apiVersion"] = json!(ri.api_version());
        obj["kind"] = json!(ri.kind);
        let uid = self.ids.uid();
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if ri.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(meta::now()));
        for f in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
        ] {
            m.remove(f);
        }
        if ri.tracks_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        if ri.has_status && ri.custom {
            obj.as_object_mut().map(|o| o.remove("status"));
        }
        builtins::normalize(ri, &mut obj);
        builtins::prepare_for_create(ri, &mut obj);
        let mut causes = validation::metadata_causes(&obj, !ri.custom);
        causes.extend(builtins::object_causes(ri, &obj));
        if !causes.is_empty() {
            return Err(ApiError::invalid_causes(
                &ri.kind,
                subject(ri, &name),
                &causes,
            ));
        }
        if ri.custom {
            obj = admit::admit_custom_object(ri, obj, None, self.field_validation)?;
        }
        if let Manager::Update(manager) = manager {
            let av = ri.api_version();
            let w = fields::Writer {
                manager,
                api_version: &av,
                status_only: false,
                schema: ri.schema.as_ref(),
            };
            fields::record_update(None, &mut obj, w);
        }
        if crd::is_crd(ri) {
            crd_validation::validate(&obj).map_err(|causes| {
                ApiError::invalid_causes(&ri.kind, subject(ri, &name), &causes)
            })?;
        }
        let stored = self.put(&gr, key.clone(), obj);
        if crd::is_crd(ri) {
            return Ok(self.sync_crd(&stored));
        }
        self.collect_if_owners_gone(&gr, &key, &stored);
        Ok(stored)
    }

    /// Replaces an object (PUT, and the final step of every patch).
    pub fn update(
        &mut self,
        ri: &ResourceInfo,
        ns: &str,
        name: &str,
        body: Value,
        part: Part,
        manager: Manager<'_>,
    ) -> ApiResult<Obj> {
        let current = self.get_object(ri, ns, name)?;
        let old = &current.value;
        let subj = subject(ri, name);
        let body_name = meta_str(&body, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_rv = meta_str(&body, "resourceVersion");
        if !body_rv.is_empty() && body_rv != meta_str(old, "resourceVersion") {
            return Err(ApiError::stale(subj));
        }
        let body_uid = meta_str(&body, "uid");
        if !body_uid.is_empty() && body_uid != meta_str(old, "uid") {
            let why = format!(
                "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {}",
                meta_str(old, "uid")
            );
            return Err(ApiError::conflict(subj, &why));
        }
        let mut new = match part {
            Part::Status => {
                let mut n = old.clone();
                match body.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut().map(|o| o.remove("status"));
                    }
                }
                if let Some(mf) = body.pointer("/metadata/managedFields") {
                    meta_mut(&mut n).insert("managedFields".into(), mf.clone());
                }
                n
            }
            Part::Main => {
                let mut n = body;
                if !n.is_object() {
                    return Err(ApiError::bad_request(
                        "the request body must be a JSON object",
                    ));
                }
                n["apiVersion"] = old["apiVersion"].clone();
                n["kind"] = old["kind"].clone();
                let old_meta = old.get("metadata").cloned().unwrap_or_default();
                let m = meta_mut(&mut n);
                for f in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "generateName",
                ] {
                    match old_meta.get(f) {
                        Some(v) => m.insert(f.into(), v.clone()),
                        None => m.remove(f),
                    };
                }
                if ri.has_status {
                    match old.get("status") {
                        Some(s) => n["status"] = s.clone(),
                        None => {
                            n.as_object_mut().map(|o| o.remove("status"));
                        }
                    }
                }
                n
            }
        };
        if meta::is_deleting(old) {
            let before = meta::finalizers(old);
            if meta::finalizers(&new).iter().any(|f| !before.contains(f)) {
                let cause = (
                    "metadata.finalizers".to_string(),
                    "Forbidden: no new finalizers can be added if the object is being deleted"
                        .to_string(),
                );
                return Err(ApiError::invalid(&ri.kind, subj, &[cause]));
            }
        }
        builtins::decodable(ri, &new)?;
        builtins::normalize(ri, &mut new);
        let mut causes = validation::metadata_causes(&new, !ri.custom);
        causes.extend(builtins::object_causes(ri, &new));
        causes.extend(builtins::update_causes(ri, old, &new));
        if !causes.is_empty() {
            return Err(ApiError::invalid_causes(&ri.kind, subj, &causes));
        }
        if ri.custom {
            new = admit::admit_custom_object(ri, new, Some(old), self.field_validation)?;
        }
        if ri.tracks_generation && spec_changed(old, &new, ri.has_status) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        if let Manager::Update(manager) = manager {
            let av = ri.api_version();
            let w = fields::Writer {
                manager,
                api_version: &av,
                status_only: part == Part::Status,
                schema: ri.schema.as_ref(),
            };
            fields::record_update(Some(old), &mut new, w);
        }
        if crd::is_crd(ri) && part == Part::Main {
            crd_validation::validate(&new)
                .map_err(|causes| ApiError::invalid_causes(&ri.kind, subj, &causes))?;
        }
        if same_object(old, &new) {
            return Ok(current);
        }
        let gr = ri.group_resource();
        let key: ObjectKey = (ns.to_string(), name.to_string());
        if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() {
            let last = self.put(&gr, key.clone(), new);
            return Ok(self.finish_removal(&gr, &key).unwrap_or(last));
        }
        let stored = self.put(&gr, key.clone(), new);
        if crd::is_crd(ri) {
            return Ok(self.sync_crd(&stored));
        }
        self.collect_if_owners_gone(&gr, &key, &stored);
        Ok(stored)
    }

    /// Registers the resources a CRD serves and marks it Established when not yet.
    pub(super) fn sync_crd(&mut self, stored: &Obj) -> Obj {
        if self.dry_run {
            return stored.clone();
        }
        for served in crd::served_resources(&stored.value) {
            self.registry.remove_resource(&served);
        }
        for info in crd::resource_infos(&stored.value) {
            self.registry.insert(info);
        }
        match crd::with_established_status(&stored.value) {
            Some(v) => {
                let key = (String::new(), meta_str(&stored.value, "name").to_string());
                self.put(&crd::crd_resource(), key, v)
            }
            None => stored.clone(),
        }
    }
}
