//! The resource verbs: get, list, create, update, patch (including server-side apply), delete,
//! deletecollection. Each takes the locked store and a request, and returns a [`Reply`].

use super::error::{ApiError, ApiResult};
use super::fields;
use super::lifecycle::{DeleteOptions, Manager, Part, subject};
use super::patch::{self, PatchError, PatchKind};
use super::request::{ApiRequest, ResourcePath};
use super::resources::ResourceInfo;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Obj, ObjectKey, Store};
use super::table;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

/// A finished response: status code and JSON body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub code: u16,
    /// JSON body.
    pub body: Bytes,
}

impl Reply {
    /// A JSON value with a status code.
    pub fn json(code: u16, v: &Value) -> Reply {
        Reply {
            code,
            body: Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        }
    }

    /// An error's Status body.
    pub fn error(e: &ApiError) -> Reply {
        Reply::json(e.code, &e.to_status())
    }
}

/// The stored bytes, with `apiVersion` rewritten when served at another version.
pub fn object_bytes(ri: &ResourceInfo, obj: &Obj) -> Bytes {
    let av = ri.api_version();
    if obj.value.get("apiVersion").and_then(Value::as_str) == Some(av.as_str()) {
        return obj.json.clone();
    }
    let mut v = obj.value.clone();
    v["apiVersion"] = json!(av);
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

fn object_reply(code: u16, ri: &ResourceInfo, obj: &Obj, req: &ApiRequest, rv: u64) -> Reply {
    if req.wants_table() {
        let include = req.param("includeObject").unwrap_or("Metadata");
        return Reply::json(
            code,
            &table::table(ri, &[&obj.value], &rv.to_string(), None, include),
        );
    }
    Reply {
        code,
        body: object_bytes(ri, obj),
    }
}

fn body_json(req: &ApiRequest) -> ApiResult<Value> {
    patch::parse_json_or_yaml(&req.body).map_err(|e| match e {
        PatchError::Malformed(m) | PatchError::Failed(m) => ApiError::bad_request(m),
    })
}

/// Runs one verb on a resource path; with `dryRun=All` nothing is kept.
pub fn handle(
    store: &mut Store,
    req: &ApiRequest,
    p: &ResourcePath,
    ri: &ResourceInfo,
) -> ApiResult<Reply> {
    if let Some(d) = req.param("dryRun").filter(|d| *d != "All") {
        return Err(ApiError::bad_request(format!(
            "unsupported dry run value {d:?}, only \"All\" is supported"
        )));
    }
    let in_body = req.method == super::request::Method::Delete
        && serde_json::from_slice::<Value>(&req.body).is_ok_and(|b| {
            b["dryRun"]
                .as_array()
                .is_some_and(|d| d.contains(&json!("All")))
        });
    store.dry_run = req.param("dryRun").is_some() || in_body;
    let reply = dispatch(store, req, p, ri);
    store.dry_run = false;
    reply
}

fn dispatch(
    store: &mut Store,
    req: &ApiRequest,
    p: &ResourcePath,
    ri: &ResourceInfo,
) -> ApiResult<Reply> {
    use super::request::Method::*;
    let ns = p.namespace.clone().unwrap_or_default();
    let part = match p.subresource.as_deref() {
        None => Part::Main,
        Some("status") if ri.has_status => Part::Status,
        Some(other) => return Err(ApiError::no_route(&format!("{}/{other}", ri.plural))),
    };
    if ri.namespaced && p.namespace.is_none() && (p.name.is_some() || req.method != Get) {
        return Err(ApiError::no_route(&req.path));
    }
    if !ri.namespaced && p.namespace.is_some() {
        return Err(ApiError::no_route(&req.path));
    }
    match (req.method, p.name.as_deref()) {
        (Get, Some(name)) => {
            let obj = store.get_object(ri, &ns, name)?;
            Ok(object_reply(200, ri, &obj, req, store.resource_version()))
        }
        (Get, None) => list(store, req, p.namespace.as_deref(), ri),
        (Post, None) => {
            let obj = store.create(
                ri,
                &ns,
                body_json(req)?,
                Manager::Update(&req.field_manager()),
            )?;
            Ok(object_reply(201, ri, &obj, req, store.resource_version()))
        }
        (Put, Some(name)) => {
            let obj = store.update(
                ri,
                &ns,
                name,
                body_json(req)?,
                part,
                Manager::Update(&req.field_manager()),
            )?;
            Ok(object_reply(200, ri, &obj, req, store.resource_version()))
        }
        (Patch, Some(name)) => patch_object(store, req, ri, &ns, name, part),
        (Delete, Some(name)) => {
            let d = store.delete(ri, &ns, name, &delete_options(req)?)?;
            Ok(Reply {
                code: if d.pending { 202 } else { 200 },
                body: object_bytes(ri, &d.object),
            })
        }
        (Delete, None) => delete_collection(store, req, &ns, ri),
        _ => Err(ApiError::method_not_allowed(format!(
            "{:?} is not supported on {}",
            req.method, req.path
        ))),
    }
}

fn delete_options(req: &ApiRequest) -> ApiResult<DeleteOptions> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        body_json(req)?
    };
    let policy = req
        .param("propagationPolicy")
        .or_else(|| body.get("propagationPolicy").and_then(Value::as_str));
    let pre = |k: &str| {
        body.pointer(&format!("/preconditions/{k}"))
            .and_then(Value::as_str)
            .map(String::from)
    };
    Ok(DeleteOptions {
        uid: pre("uid"),
        resource_version: pre("resourceVersion"),
        orphan: policy == Some("Orphan"),
    })
}

/// Parsed list options.
pub struct ListFilter {
    /// `labelSelector`
    pub labels: LabelSelector,
    /// `fieldSelector`
    pub fields: FieldSelector,
}

impl ListFilter {
    /// From the request's query.
    pub fn from_request(req: &ApiRequest) -> ApiResult<Self> {
        Ok(ListFilter {
            labels: LabelSelector::parse(req.param("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(req.param("fieldSelector").unwrap_or(""))?,
        })
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, v: &Value) -> bool {
        self.labels.matches(v) && self.fields.matches(v)
    }
}

fn parse_continue(token: &str) -> ApiResult<(u64, ObjectKey)> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let mut it = token.splitn(3, '/');
    let rv = it.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = it.next().ok_or_else(bad)?;
    let name = it.next().ok_or_else(bad)?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

fn list(store: &Store, req: &ApiRequest, ns: Option<&str>, ri: &ResourceInfo) -> ApiResult<Reply> {
    let filter = ListFilter::from_request(req)?;
    let limit = req
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let (rv, after) = match req.param("continue") {
        Some(t) => {
            let (rv, k) = parse_continue(t)?;
            (rv, Some(k))
        }
        None => (store.resource_version(), None),
    };
    let ns = ns.or(filter.fields.namespace());
    let mut items: Vec<&Obj> = Vec::new();
    let mut last: Option<&ObjectKey> = None;
    let mut more: Option<ObjectKey> = None;
    let mut remaining = 0usize;
    for (key, obj) in store.iter(&ri.group_resource(), ns, after.as_ref()) {
        if !filter.matches(&obj.value) {
            continue;
        }
        if more.is_some() {
            remaining += 1;
        } else if limit.is_some_and(|l| items.len() >= l) {
            more = last.cloned();
            remaining += 1;
        } else {
            items.push(obj);
            last = Some(key);
        }
    }
    let cont = more.map(|(ns, name)| format!("{rv}/{ns}/{name}"));
    if req.wants_table() {
        let values: Vec<&Value> = items.iter().map(|o| &o.value).collect();
        let include = req.param("includeObject").unwrap_or("Metadata");
        return Ok(Reply::json(
            200,
            &table::table(ri, &values, &rv.to_string(), cont.as_deref(), include),
        ));
    }
    let mut md = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = &cont {
        md["continue"] = json!(c);
        md["remainingItemCount"] = json!(remaining);
    }
    let head = json!({"kind": ri.list_kind(), "apiVersion": ri.api_version(), "metadata": md});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    let mut buf = BytesMut::with_capacity(
        head.len() + items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 16,
    );
    buf.put_slice(&head[..head.len() - 1]);
    buf.put_slice(b",\"items\":[");
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(&object_bytes(ri, o));
    }
    buf.put_slice(b"]}");
    Ok(Reply {
        code: 200,
        body: buf.freeze(),
    })
}

fn patch_object(
    store: &mut Store,
    req: &ApiRequest,
    ri: &ResourceInfo,
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
        return apply(store, req, ri, ns, name, part);
    }
    let current = store.get_object(ri, ns, name)?;
    let patched = patch::apply_patch(kind, &current.value, &req.body).map_err(|e| match e {
        PatchError::Malformed(m) => ApiError::bad_request(m),
        PatchError::Failed(m) => {
            ApiError::invalid(&ri.kind, subject(ri, name), &[("patch".into(), m)])
        }
    })?;
    let obj = store.update(
        ri,
        ns,
        name,
        patched,
        part,
        Manager::Update(&req.field_manager()),
    )?;
    Ok(object_reply(200, ri, &obj, req, store.resource_version()))
}

fn apply(
    store: &mut Store,
    req: &ApiRequest,
    ri: &ResourceInfo,
    ns: &str,
    name: &str,
    part: Part,
) -> ApiResult<Reply> {
    let manager = req
        .param("fieldManager")
        .ok_or_else(|| {
            ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requests must supply fieldManager",
            )
        })?
        .to_string();
    let applied = body_json(req)?;
    let applied_name = super::meta::meta_str(&applied, "name");
    if !applied_name.is_empty() && applied_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({applied_name}) does not match the name on the URL ({name})"
        )));
    }
    let current = store.get(&ri.group_resource(), &(ns.to_string(), name.to_string()));
    let live = match &current {
        Some(c) => c.value.clone(),
        None if part == Part::Status => return Err(ApiError::not_found(subject(ri, name))),
        None => json!({}),
    };
    let status_only = part == Part::Status;
    let merged = fields::apply(&live, &applied, &manager, req.flag("force"), &ri.api_version(), status_only, ri.has_status)
        .map_err(|conflicts| {
            let fields: Vec<String> = conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, c.field)).collect();
            let why = format!("Apply failed with {} conflict{}: {}", conflicts.len(), if conflicts.len() == 1 { "" } else { "s" }, fields.join("\n"));
            let mut e = ApiError::conflict(subject(ri, name), "");
            e.message = why;
            e.details["causes"] = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                .collect();
            e
        })?;
    if current.is_none() {
        let mut obj = merged;
        super::meta::meta_mut(&mut obj).insert("name".into(), json!(name));
        let created = store.create(ri, ns, obj, Manager::Precomputed)?;
        return Ok(object_reply(
            201,
            ri,
            &created,
            req,
            store.resource_version(),
        ));
    }
    let obj = store.update(ri, ns, name, merged, part, Manager::Precomputed)?;
    Ok(object_reply(200, ri, &obj, req, store.resource_version()))
}

fn delete_collection(
    store: &mut Store,
    req: &ApiRequest,
    ns: &str,
    ri: &ResourceInfo,
) -> ApiResult<Reply> {
    let filter = ListFilter::from_request(req)?;
    let opts = delete_options(req)?;
    let ns_filter = if ri.namespaced { Some(ns) } else { None };
    let names: Vec<String> = store
        .iter(&ri.group_resource(), ns_filter, None)
        .filter(|(_, o)| filter.matches(&o.value))
        .map(|(k, _)| k.1.clone())
        .collect();
    let mut items = Vec::new();
    for name in names {
        if let Ok(d) = store.delete(ri, ns, &name, &opts) {
            items.push(d.object.value.clone());
        }
    }
    let md = json!({"resourceVersion": store.resource_version().to_string()});
    Ok(Reply::json(
        200,
        &json!({"kind": ri.list_kind(), "apiVersion": ri.api_version(), "metadata": md, "items": items}),
    ))
}
