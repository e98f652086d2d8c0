//! PATCH: JSON, merge and strategic merge patches, and server-side apply (which creates).
//! Patches apply to the object as served and are converted back to storage form.

use super::convert;
use super::patch::{self, PatchError, PatchKind};
use super::reply::{Reply, body_json, object_reply};
use crate::apiserver::error::{ApiError, ApiResult, Cause, Subject};
use crate::apiserver::objects::admit;
use crate::apiserver::objects::fields;
use crate::apiserver::objects::lifecycle::{Manager, Part, subject};
use crate::apiserver::request::ApiRequest;
use crate::apiserver::store::Store;
use crate::apiserver::store::meta::{meta_mut, meta_str};
use crate::apiserver::store::resources::ResourceInfo;
use serde_json::{Value, json};

/// The served resource and the storing one.
type Pair<'a> = (&'a ResourceInfo, &'a ResourceInfo);

/// Patches (or applies) one object.
pub fn patch(
    store: &mut Store,
    req: &ApiRequest,
    (ri, sri): Pair<'_>,
    ns: &str,
    name: &str,
    part: Part,
) -> ApiResult<Reply> {
    let kind = PatchKind::from_content_type(&req.content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(&req.content_type))?;
    if kind == PatchKind::Strategic && ri.custom {
        return Err(ApiError::unsupported_media_type(
            "application/strategic-merge-patch+json is not supported for custom resources",
        ));
    }
    if kind == PatchKind::Apply {
        return apply(store, req, (ri, sri), ns, name, part);
    }
    let current = store.get_object(sri, ns, name)?;
    let served = convert::from_storage(ri, &current.value);
    let patched = patch::apply_patch(kind, served, &req.body).map_err(|e| match e {
        PatchError::Malformed(m) => ApiError::bad_request(m),
        PatchError::Failed(m) => {
            ApiError::invalid(&ri.kind, subject(ri, name), &[("patch".into(), m)])
        }
    })?;
    let obj = store.update(
        sri,
        ns,
        name,
        convert::to_storage(ri, patched),
        part,
        Manager::Update(&req.field_manager()),
    )?;
    Ok(object_reply(200, ri, &obj, req, store.resource_version()))
}

fn apply(
    store: &mut Store,
    req: &ApiRequest,
    (ri, sri): Pair<'_>,
    ns: &str,
    name: &str,
    part: Part,
) -> ApiResult<Reply> {
    let manager = req
        .param("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            let cause = Cause {
                reason: "FieldValueRequired",
                field: "fieldManager".into(),
                message: "Required value: is required for apply patch".into(),
            };
            let subject = Subject {
                group: "meta.k8s.io",
                resource: "",
                name: "",
            };
            ApiError::invalid_causes("PatchOptions", subject, &[cause])
        })?
        .to_string();
    let applied = body_json(req)?;
    let applied_name = meta_str(&applied, "name");
    if !applied_name.is_empty() && applied_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({applied_name}) does not match the name on the URL ({name})"
        )));
    }
    undeclared_fields_refused(ri, ns, name, &applied)?;
    let current = store.get(&sri.group_resource(), &(ns.to_string(), name.to_string()));
    let live = match &current {
        Some(c) => convert::from_storage(ri, &c.value),
        None if part == Part::Status => return Err(ApiError::not_found(subject(ri, name))),
        None => json!({}),
    };
    let status_only = part == Part::Status;
    let av = ri.api_version();
    let writer = fields::Writer {
        manager: &manager,
        api_version: &av,
        status_only,
        schema: ri.schema.as_ref(),
    };
    let merged = fields::apply(&live, &applied, writer, req.flag("force"), ri.has_status).map_err(
        |conflicts| {
            let pairs: Vec<(String, String)> = conflicts
                .into_iter()
                .map(|c| (c.manager, c.field))
                .collect();
            ApiError::apply_conflicts(&pairs)
        },
    )?;
    if current.is_none() {
        let mut obj = merged;
        meta_mut(&mut obj).insert("name".into(), json!(name));
        let created = store.create(sri, ns, convert::to_storage(ri, obj), Manager::Precomputed)?;
        return Ok(object_reply(
            201,
            ri,
            &created,
            req,
            store.resource_version(),
        ));
    }
    let merged = convert::to_storage(ri, merged);
    let obj = store.update(sri, ns, name, merged, part, Manager::Precomputed)?;
    Ok(object_reply(200, ri, &obj, req, store.resource_version()))
}

/// Server-side apply builds a typed object from the applied configuration before anything
/// else, so a field the CRD's schema does not declare is an error (500, as kube-apiserver
/// answers), not pruned silently as on create and update.
fn undeclared_fields_refused(
    ri: &ResourceInfo,
    ns: &str,
    name: &str,
    applied: &Value,
) -> ApiResult<()> {
    let Some(schema) = &ri.schema else {
        return Ok(());
    };
    let Some(path) = admit::pruned_field(schema, applied) else {
        return Ok(());
    };
    let object = if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    };
    Err(ApiError::internal(format!(
        "failed to create typed patch object ({object}; {}, Kind={}): .{path}: field not declared in schema",
        ri.api_version(),
        ri.kind
    )))
}
