//! kubectl get (printer columns, -A, short names, categories, -w), describe, explain. Every
//! scenario runs on both servers.

use super::{gadget_resource, gadgets, installed, suffix};
use crate::Target;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

async fn kubectl_get_prints_printer_columns_by_short_name_and_category_across_namespaces(
    t: Target,
) {
    let k = installed(&t, "5").await;
    let api = gadgets(&t, "team-a");
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    api.patch_status("g1", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let ns = t.ns_named("team-a");
    // All namespaces, narrowed to the test's: other tests share the real server.
    let only_mine = format!("--field-selector=metadata.namespace={ns}");
    let sfx = suffix(&t);
    for what in [
        format!("gd{sfx}"),
        format!("toys{sfx}"),
        gadget_resource(&t),
    ] {
        let out = k.run(&["get", &what, "-A", &only_mine]).await;
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            vec!["NAMESPACE", "NAME", "SIZE", "READY"],
            "{out}"
        );
        assert_eq!(lines[1], [ns.as_str(), "g1", "5", "True"], "{out}");
    }
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_get_prints_printer_columns_by_short_name_and_category_across_namespaces
);

async fn kubectl_describe_and_explain_show_the_object_and_its_schema(t: Target) {
    let k = installed(&t, "4").await;
    let client = t.client.clone();
    let g = gadgets(&t, "team-a").get("g1").await.unwrap();
    let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        &t.group(),
        "v1",
        "Gadget",
    ));
    let recorder = kube::runtime::events::Recorder::new(client.clone(), "gadget-controller".into());
    let ev = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Warning,
        reason: "TooSmall".into(),
        note: Some("size 4 is too small".into()),
        action: "Check".into(),
        secondary: None,
    };
    recorder
        .publish(&ev, &kube::Resource::object_ref(&g, &ar))
        .await
        .unwrap();
    let ns = t.ns_named("team-a");
    let out = k
        .run(&["describe", &gadget_resource(&t), "g1", "-n", &ns])
        .await;
    assert!(
        out.contains("TooSmall") && out.contains("size 4 is too small"),
        "{out}"
    );
    assert!(
        out.contains("Name:         g1") && out.contains("Size:  4"),
        "{out}"
    );
    let api_version = format!("--api-version={}/v1", t.group());
    let out = k.run(&["explain", "gadgets.spec.size", &api_version]).await;
    assert!(out.contains("How big the gadget is."), "{out}");
    let out = k.run(&["explain", &format!("gd{}.spec", suffix(&t))]).await;
    assert!(
        out.contains("What the gadget should be.") && out.contains("size\t<integer>"),
        "{out}"
    );
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_describe_and_explain_show_the_object_and_its_schema
);

async fn kubectl_get_watch_prints_each_change_as_a_table_row(t: Target) {
    let k = installed(&t, "1").await;
    let ns = t.ns_named("team-a");
    let mut child = k
        .command(&["get", &gadget_resource(&t), "-n", &ns, "-w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.starts_with("NAME"), "{first}");
    let api = gadgets(&t, "team-a");
    api.patch(
        "g1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 8}})),
    )
    .await
    .unwrap();
    let mut rows = Vec::new();
    while !rows
        .iter()
        .any(|r: &String| r.split_whitespace().nth(1) == Some("8"))
    {
        rows.push(
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a row for the change")
                .unwrap(),
        );
    }
    child.kill().unwrap();
    let _ = child.wait();
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_get_watch_prints_each_change_as_a_table_row
);
