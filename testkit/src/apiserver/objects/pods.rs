//! Pods, stored and never run: what the real API server itself does to one, and nothing a
//! scheduler or kubelet would do. On every write its spec gets the server's defaults; a new
//! Pod also gets the `DefaultTolerationSeconds` tolerations and the status `Pending` with its
//! QoS class, and keeps that status until a client writes `/status`. Updates may change only
//! what the real server lets them change (container images, `activeDeadlineSeconds`,
//! tolerations).

use crate::apiserver::error::Cause;
use serde_json::{Map, Value, json};

/// The real server's words for a forbidden Pod update (before its diff of the two specs).
const UPDATE_FORBIDDEN: &str = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), value);
    }
}

/// `Always` for an untagged or `:latest` image, else `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else {
        return;
    };
    let image = m.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = pull_policy(image);
    set_default(m, "imagePullPolicy", json!(policy));
    set_default(m, "resources", json!({}));
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    for port in m
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        set_default(port, "protocol", json!("TCP"));
    }
}

/// The defaults the real server gives a Pod's spec on every write.
pub fn default(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "enableServiceLinks", json!(true));
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    set_default(spec, "priority", json!(0));
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    for list in CONTAINER_LISTS {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            default_container(c);
        }
    }
    for volume in spec
        .get_mut("volumes")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for source in ["secret", "configMap", "projected", "downwardAPI"] {
            if let Some(s) = volume.get_mut(source).and_then(Value::as_object_mut) {
                set_default(s, "defaultMode", json!(420));
            }
        }
    }
}

/// What a new Pod gets besides its defaults: the tolerations of the `DefaultTolerationSeconds`
/// admission plugin and the status `Pending` with its QoS class (a client's status is
/// dropped).
pub fn prepare_for_create(pod: &mut Value) {
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
        if !tolerations.is_array() {
            *tolerations = json!([]);
        }
        let list = tolerations.as_array_mut().expect("made an array above");
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let tolerated = list.iter().any(|t| {
                let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("");
                (s("key") == key || (s("key").is_empty() && s("operator") == "Exists"))
                    && (s("effect").is_empty() || s("effect") == "NoExecute")
            });
            if !tolerated {
                list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    let qos = qos_class(pod);
    pod["status"] = json!({"phase": "Pending", "qosClass": qos});
}

/// `BestEffort` without any CPU or memory requests and limits, `Guaranteed` when every
/// container limits both and requests what it limits, else `Burstable`.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| pod.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let amount = |c: &Value, kind: &str, res: &str| {
        c.pointer(&format!("/resources/{kind}/{res}"))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let any = containers.iter().any(|c| {
        ["requests", "limits"]
            .iter()
            .any(|k| ["cpu", "memory"].iter().any(|r| amount(c, k, r).is_some()))
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = amount(c, "limits", r);
            let request = amount(c, "requests", r);
            limit.is_some() && (request.is_none() || request == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn required(field: String) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        field,
        message: "Required value".into(),
    }
}

/// A Pod's spec must name containers, each with a name and an image.
pub fn causes(pod: &Value) -> Vec<Cause> {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if containers.is_empty() {
        return vec![required("spec.containers".into())];
    }
    let mut causes = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        for k in ["name", "image"] {
            if c.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                causes.push(required(format!("spec.containers[{i}].{k}")));
            }
        }
    }
    causes
}

/// A Pod's spec with what updates may change taken from `old`, to compare with the old one.
fn comparable(new: &Value, old: &Value) -> Value {
    let mut spec = new.get("spec").cloned().unwrap_or(json!({}));
    let old_spec = old.get("spec").cloned().unwrap_or(json!({}));
    for field in ["activeDeadlineSeconds", "tolerations"] {
        match old_spec.get(field) {
            Some(v) => spec[field] = v.clone(),
            None => {
                spec.as_object_mut().map(|s| s.remove(field));
            }
        }
    }
    for list in ["containers", "initContainers"] {
        let olds = old_spec.get(list).and_then(Value::as_array);
        let news = spec.get_mut(list).and_then(Value::as_array_mut);
        if let (Some(olds), Some(news)) = (olds, news) {
            for (n, o) in news.iter_mut().zip(olds) {
                if let (Some(n), Some(image)) = (n.as_object_mut(), o.get("image")) {
                    n.insert("image".into(), image.clone());
                }
            }
        }
    }
    spec
}

/// Update rules: only images, `activeDeadlineSeconds` and tolerations (which may only grow)
/// may change in a Pod's spec.
pub fn update_causes(old: &Value, new: &Value) -> Vec<Cause> {
    let old_tolerations = old
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_tolerations = new
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let shrunk = old_tolerations.iter().any(|t| !new_tolerations.contains(t));
    if shrunk || comparable(new, old) != old.get("spec").cloned().unwrap_or(json!({})) {
        return vec![Cause {
            reason: "FieldValueForbidden",
            field: "spec".into(),
            message: UPDATE_FORBIDDEN.into(),
        }];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never", "containers": [
            {"name": "a", "image": "alpine/git:2.45.2"},
            {"name": "b", "image": "busybox", "ports": [{"containerPort": 80}]}
        ], "volumes": [{"name": "s", "secret": {"secretName": "x"}}]}})
    }

    #[test]
    fn a_new_pod_is_defaulted_tolerated_and_pending_as_best_effort() {
        let mut p = pod();
        default(&mut p);
        prepare_for_create(&mut p);
        let spec = &p["spec"];
        assert_eq!(
            (spec["restartPolicy"].as_str(), spec["dnsPolicy"].as_str()),
            (Some("Never"), Some("ClusterFirst"))
        );
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(spec["containers"][1]["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["volumes"][0]["secret"]["defaultMode"], 420);
        assert_eq!(spec["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }

    #[test]
    fn the_qos_class_follows_requests_and_limits() {
        let mut p = pod();
        p["spec"]["containers"] = json!([{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]);
        assert_eq!(qos_class(&p), "Guaranteed");
        p["spec"]["containers"][0]["resources"]["requests"] = json!({"cpu": "500m"});
        assert_eq!(qos_class(&p), "Burstable");
    }

    #[test]
    fn an_update_may_change_images_but_not_the_restart_policy() {
        let mut old = pod();
        default(&mut old);
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("alpine/git:2.45.3");
        new["spec"]["activeDeadlineSeconds"] = json!(60);
        assert!(update_causes(&old, &new).is_empty());
        new["spec"]["restartPolicy"] = json!("Always");
        let causes = update_causes(&old, &new);
        assert_eq!(
            (causes[0].reason, causes[0].field.as_str()),
            ("FieldValueForbidden", "spec")
        );
    }

    #[test]
    fn a_pod_needs_containers_with_names_and_images() {
        assert_eq!(causes(&json!({"spec": {}}))[0].field, "spec.containers");
        let nameless = json!({"spec": {"containers": [{"image": "x"}]}});
        assert_eq!(causes(&nameless)[0].field, "spec.containers[0].name");
        assert!(causes(&pod()).is_empty());
    }
}
