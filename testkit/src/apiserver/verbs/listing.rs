//! Collection verbs: list (selectors, limit/continue, Tables) and deletecollection.

use super::convert;
use super::reply::{Reply, delete_options, object_bytes};
use super::selector::{FieldSelector, LabelSelector};
use super::table;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::request::ApiRequest;
use crate::apiserver::store::resources::ResourceInfo;
use crate::apiserver::store::{Obj, ObjectKey, Store};
use bytes::{BufMut, BytesMut};
use serde_json::{Value, json};

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

    /// Whether a stored object passes, judged in the form `ri` serves it (field selectors of
    /// events.k8s.io name `regarding.*`, not the stored `involvedObject.*`).
    pub fn matches_served(&self, ri: &ResourceInfo, stored: &Value) -> bool {
        if convert::converted(ri) {
            self.matches(&convert::from_storage(ri, stored))
        } else {
            self.matches(stored)
        }
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

/// Lists `ri` (stored as `sri`), optionally in one namespace.
pub fn list(
    store: &Store,
    req: &ApiRequest,
    ns: Option<&str>,
    ri: &ResourceInfo,
    sri: &ResourceInfo,
) -> ApiResult<Reply> {
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
    for (key, obj) in store.iter(&sri.group_resource(), ns, after.as_ref()) {
        if !filter.matches_served(ri, &obj.value) {
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
        let owned: Vec<Value> = items
            .iter()
            .map(|o| convert::from_storage(ri, &o.value))
            .collect();
        let values: Vec<&Value> = owned.iter().collect();
        let include = req.param("includeObject").unwrap_or("Metadata");
        return Ok(Reply::json(
            200,
            &table::table(ri, &values, &rv.to_string(), cont.as_deref(), include),
        ));
    }
    let mut md = json!({"resourceVersion": rv.to_string()});
    if req.wants_metadata() {
        if let Some(c) = &cont {
            md["continue"] = json!(c);
            md["remainingItemCount"] = json!(remaining);
        }
        let items: Vec<Value> = items
            .iter()
            .map(|o| table::partial_metadata(&o.value))
            .collect();
        let list = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": md, "items": items});
        return Ok(Reply::json(200, &list));
    }
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
    Ok(Reply::bytes(200, buf.freeze()))
}

/// Deletes every object of `ri` (stored as `sri`) in `ns` that the selectors match.
pub fn delete_collection(
    store: &mut Store,
    req: &ApiRequest,
    ns: &str,
    ri: &ResourceInfo,
    sri: &ResourceInfo,
) -> ApiResult<Reply> {
    let filter = ListFilter::from_request(req)?;
    let opts = delete_options(req)?;
    let ns_filter = if ri.namespaced { Some(ns) } else { None };
    let names: Vec<String> = store
        .iter(&sri.group_resource(), ns_filter, None)
        .filter(|(_, o)| filter.matches_served(ri, &o.value))
        .map(|(k, _)| k.1.clone())
        .collect();
    let mut items = Vec::new();
    for name in names {
        if let Ok(d) = store.delete(sri, ns, &name, &opts) {
            items.push(convert::from_storage(ri, &d.object.value));
        }
    }
    let md = json!({"resourceVersion": store.resource_version().to_string()});
    Ok(Reply::json(
        200,
        &json!({"kind": ri.list_kind(), "apiVersion": ri.api_version(), "metadata": md, "items": items}),
    ))
}
