//! kubectl get (printer columns, -A, short names, categories, -w), describe, explain.

use super::{gadgets, installed};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_printer_columns_by_short_name_and_category_across_namespaces() {
    let (_emu, client, k) = installed("5").await;
    let api = gadgets(&client, "team-a");
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    api.patch_status("g1", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    for what in ["gd", "toys", "gadgets.example.com"] {
        let out = k.run(&["get", what, "-A"]).await;
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            vec!["NAMESPACE", "NAME", "SIZE", "READY"],
            "{out}"
        );
        assert_eq!(lines[1], ["team-a", "g1", "5", "True"], "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_and_explain_show_the_object_and_its_schema() {
    let (_emu, client, k) = installed("4").await;
    let g = gadgets(&client, "team-a").get("g1").await.unwrap();
    let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "example.com",
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
    let out = k.run(&["describe", "gadget", "g1", "-n", "team-a"]).await;
    assert!(
        out.contains("TooSmall") && out.contains("size 4 is too small"),
        "{out}"
    );
    assert!(
        out.contains("Name:         g1") && out.contains("Size:  4"),
        "{out}"
    );
    let out = k.run(&["explain", "gadget.spec.size"]).await;
    assert!(out.contains("How big the gadget is."), "{out}");
    let out = k.run(&["explain", "gd.spec"]).await;
    assert!(
        out.contains("What the gadget should be.") && out.contains("size\t<integer>"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_each_change_as_a_table_row() {
    let (_emu, client, k) = installed("1").await;
    let mut child = k
        .command(&["get", "gadgets", "-n", "team-a", "-w"])
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
    let api = gadgets(&client, "team-a");
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
