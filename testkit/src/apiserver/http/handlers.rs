//! Request dispatch: routes a request to discovery, OpenAPI, a resource verb or a watch.

use super::discovery;
use super::openapi;
use crate::apiserver::error::ApiError;
use crate::apiserver::request::{ApiRequest, Method, Route};
use crate::apiserver::store::Store;
use crate::apiserver::verbs::convert;
use crate::apiserver::verbs::watch::WatchSpec;
use crate::apiserver::verbs::{self, reply::Reply};

/// What the HTTP layer must do with a request.
pub enum Outcome {
    /// Send this reply.
    Reply(Reply),
    /// Start this watch.
    Watch(WatchSpec),
}

impl From<Reply> for Outcome {
    fn from(r: Reply) -> Self {
        Outcome::Reply(r)
    }
}

/// What clients put in `Accept` to ask for aggregated discovery.
const AGGREGATED: &str = "as=APIGroupDiscoveryList";

/// An aggregated discovery reply, with the content type clients check for.
fn aggregated(v: serde_json::Value) -> Outcome {
    let mut r = Reply::json(200, &v);
    r.content_type = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    r.into()
}

fn found(v: Option<serde_json::Value>, req: &ApiRequest) -> Outcome {
    match v {
        Some(v) => Reply::json(200, &v).into(),
        None => Reply::error(&ApiError::no_route(&req.path)).into(),
    }
}

/// Handles one request against the (locked) store. `address` is the server's host:port.
pub fn handle(store: &mut Store, req: &ApiRequest, address: &str) -> Outcome {
    let route = Route::parse(&req.path);
    if req.method != Method::Get && !matches!(route, Route::Resource(_)) {
        return Reply::error(&ApiError::method_not_allowed(format!(
            "{:?} is not allowed on {}",
            req.method, req.path
        )))
        .into();
    }
    match route {
        Route::Root => Reply::json(200, &discovery::root_paths(&store.registry)).into(),
        Route::Version => Reply::json(200, &discovery::version()).into(),
        Route::Health => Reply {
            code: 200,
            body: bytes::Bytes::from_static(b"ok"),
            content_type: "text/plain",
        }
        .into(),
        Route::CoreVersions if req.accept.contains(AGGREGATED) => {
            aggregated(discovery::aggregated(&store.registry, true))
        }
        Route::Groups if req.accept.contains(AGGREGATED) => {
            aggregated(discovery::aggregated(&store.registry, false))
        }
        Route::CoreVersions => Reply::json(200, &discovery::core_versions(address)).into(),
        Route::Groups => Reply::json(200, &discovery::groups(&store.registry)).into(),
        Route::Group(g) => found(discovery::group(&store.registry, &g), req),
        Route::GroupVersion(g, v) => found(discovery::resource_list(&store.registry, &g, &v), req),
        Route::OpenApiV2 => Reply::error(&ApiError::no_route(&req.path)).into(),
        Route::OpenApiV3Root => Reply::json(200, &openapi::root(&store.registry)).into(),
        Route::OpenApiV3(g, v) => found(openapi::group_version(&store.registry, &g, &v), req),
        Route::Unknown => Reply::error(&ApiError::no_route(&req.path)).into(),
        Route::Resource(p) => {
            let Some(ri) = store.registry.get(&p.group, &p.version, &p.plural) else {
                return Reply::error(&ApiError::no_route(&req.path)).into();
            };
            let watching = req.method == Method::Get && p.name.is_none() && req.flag("watch");
            if watching {
                if !ri.namespaced && p.namespace.is_some() {
                    return Reply::error(&ApiError::no_route(&req.path)).into();
                }
                let storage = convert::storage_of(&store.registry, &ri).group_resource();
                return match WatchSpec::from_request(storage, req, ri, p.namespace.clone()) {
                    Ok(spec) => Outcome::Watch(spec),
                    Err(e) => Reply::error(&e).into(),
                };
            }
            match verbs::handle(store, req, &p, &ri) {
                Ok(r) => r.into(),
                Err(e) => Reply::error(&e).into(),
            }
        }
    }
}
