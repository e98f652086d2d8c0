//! kubectl label, annotate, edit, diff, wait, delete.

use super::{OBJECTS, gadgets, installed};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_label_sets_a_namespace_label() {
    let (_emu, client, k) = installed("1").await;
    let out = k
        .run(&["label", "ns", "team-a", "patchbay.dev/parent=ci"])
        .await;
    assert!(out.contains("namespace/team-a labeled"), "{out}");
    let ns = Api::<Namespace>::all(client).get("team-a").await.unwrap();
    assert_eq!(ns.labels()["patchbay.dev/parent"], "ci");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_for_condition_ready_returns_once_the_condition_is_true() {
    let (_emu, client, k) = installed("1").await;
    let waiting = k.run(&[
        "wait",
        "--for=condition=Ready",
        "gadget/g1",
        "-n",
        "team-a",
        "--timeout=20s",
    ]);
    let api = gadgets(&client, "team-a");
    let set_ready = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        api.patch_status("g1", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    };
    let (out, ()) = tokio::join!(waiting, set_ready);
    assert!(out.contains("condition met"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_removes_objects_and_a_namespace_with_its_contents() {
    let (_emu, client, k) = installed("1").await;
    let out = k.run(&["delete", "gadget", "g1", "-n", "team-a"]).await;
    assert!(out.contains("deleted"), "{out}");
    assert!(
        gadgets(&client, "team-a")
            .get_opt("g1")
            .await
            .unwrap()
            .is_none()
    );
    k.run(&["delete", "namespace", "team-a"]).await;
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), "team-a")
            .get_opt("cfg")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Namespace>::all(client)
            .get_opt("team-a")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_annotate_edit_diff_and_wait_for_delete_work() {
    let (_emu, client, k) = installed("1").await;
    k.run(&["annotate", "gadget", "g1", "-n", "team-a", "note=hi"])
        .await;
    let g = gadgets(&client, "team-a").get("g1").await.unwrap();
    assert_eq!(g.annotations()["note"], "hi");
    let editor = [("KUBE_EDITOR", "sed -i s/size:\\ 1/size:\\ 6/")];
    let (code, out, err) = k
        .run_env(&["edit", "gadget", "g1", "-n", "team-a"], &editor)
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let g = gadgets(&client, "team-a").get("g1").await.unwrap();
    assert_eq!(g.data["spec"]["size"], 6);
    let changed = k.write("changed.yaml", &OBJECTS.replace("SIZE", "7"));
    let (code, diff, err) = k.run_env(&["diff", "-f", &changed], &[]).await;
    assert_eq!(
        code, 1,
        "kubectl diff exits 1 when there are differences: {err}"
    );
    assert!(diff.contains("+  size: 7"), "{diff}");
    assert_eq!(
        gadgets(&client, "team-a").get("g1").await.unwrap().data["spec"]["size"],
        6,
        "diff is a dry run"
    );
    let waiting = k.run(&[
        "wait",
        "--for=delete",
        "gadget/g1",
        "-n",
        "team-a",
        "--timeout=20s",
    ]);
    let delete = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        gadgets(&client, "team-a")
            .delete("g1", &Default::default())
            .await
            .unwrap();
    };
    let (out, ()) = tokio::join!(waiting, delete);
    assert!(
        out.contains("deleted") || out.contains("condition met"),
        "{out}"
    );
}
