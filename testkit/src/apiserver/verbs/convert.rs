//! Resources served under two APIs but stored once: `events.k8s.io/v1` Events are core
//! `v1` Events in storage, as in the real server. So an Event written by kube's `Recorder`
//! (events.k8s.io) shows in `kubectl describe` (which reads core Events), and vice versa.

use crate::apiserver::store::resources::{Registry, ResourceInfo};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// (events.k8s.io field, core field) pairs that only differ in name.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Whether objects of this resource are stored as another resource.
pub fn converted(ri: &ResourceInfo) -> bool {
    ri.group == "events.k8s.io" && ri.plural == "events"
}

/// The resource that stores objects of `ri` (itself, unless converted).
pub fn storage_of(reg: &Registry, ri: &Arc<ResourceInfo>) -> Arc<ResourceInfo> {
    if converted(ri) {
        reg.get("", "v1", "events").unwrap_or_else(|| ri.clone())
    } else {
        ri.clone()
    }
}

fn rename(v: &Value, from_external: bool, api_version: &str) -> Value {
    let Some(m) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::with_capacity(m.len());
    for (k, val) in m {
        let renamed = RENAMED.iter().find_map(|(ext, core)| {
            let (from, to) = if from_external {
                (ext, core)
            } else {
                (core, ext)
            };
            (k == from).then_some(*to)
        });
        out.insert(renamed.unwrap_or(k).to_string(), val.clone());
    }
    out.insert("apiVersion".into(), json!(api_version));
    Value::Object(out)
}

/// An object as the client sent it, in storage form.
pub fn to_storage(ri: &ResourceInfo, v: Value) -> Value {
    if converted(ri) {
        rename(&v, true, "v1")
    } else {
        v
    }
}

/// A stored object in the form the client asked for.
pub fn from_storage(ri: &ResourceInfo, v: &Value) -> Value {
    if converted(ri) {
        rename(v, false, &ri.api_version())
    } else {
        v.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_k8s_io_event_round_trips_through_its_core_form() {
        let reg = Registry::with_builtins();
        let ri = reg.get("events.k8s.io", "v1", "events").unwrap();
        let ext = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "regarding": {"name": "x"},
                         "note": "hello", "reason": "Made", "reportingController": "ctl"});
        let core = to_storage(&ri, ext.clone());
        assert_eq!(core["involvedObject"]["name"], "x");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(from_storage(&ri, &core), ext);
        assert_eq!(storage_of(&reg, &ri).group, "");
    }
}
