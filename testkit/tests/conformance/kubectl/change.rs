//! kubectl label, annotate, edit, diff, wait, delete. Every scenario runs on both servers
//! except deleting a namespace with kubectl, which waits for the namespace to go: a bare
//! kube-apiserver has no namespace controller to remove it.

use super::{gadget_resource, gadgets, installed, objects};
use crate::Target;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;

async fn kubectl_label_sets_a_namespace_label(t: Target) {
    let k = installed(&t, "1").await;
    let ns = t.ns_named("team-a");
    let out = k.run(&["label", "ns", &ns, "patchbay.dev/parent=ci"]).await;
    assert!(out.contains(&format!("namespace/{ns} labeled")), "{out}");
    let got = Api::<Namespace>::all(t.client.clone())
        .get(&ns)
        .await
        .unwrap();
    assert_eq!(got.labels()["patchbay.dev/parent"], "ci");
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_label_sets_a_namespace_label
);

async fn kubectl_wait_for_condition_ready_returns_once_the_condition_is_true(t: Target) {
    let k = installed(&t, "1").await;
    let gadget = format!("{}/g1", gadget_resource(&t));
    let ns = t.ns_named("team-a");
    let args = [
        "wait",
        "--for=condition=Ready",
        &gadget,
        "-n",
        &ns,
        "--timeout=20s",
    ];
    let waiting = k.run(&args);
    let api = gadgets(&t, "team-a");
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
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_wait_for_condition_ready_returns_once_the_condition_is_true
);

async fn kubectl_delete_removes_an_object(t: Target) {
    let k = installed(&t, "1").await;
    let ns = t.ns_named("team-a");
    let out = k
        .run(&["delete", &gadget_resource(&t), "g1", "-n", &ns])
        .await;
    assert!(
        out.contains(&format!("gadget.{} \"g1\" deleted", t.group())),
        "{out}"
    );
    assert!(gadgets(&t, "team-a").get_opt("g1").await.unwrap().is_none());
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_delete_removes_an_object
);

/// Emulator only: kubectl waits for the namespace to go, which takes a namespace controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_removes_a_namespace_with_its_contents() {
    let t = Target::emulator().await;
    let k = installed(&t, "1").await;
    let ns = t.ns_named("team-a");
    k.run(&["delete", "namespace", &ns]).await;
    assert!(
        Api::<ConfigMap>::namespaced(t.client.clone(), &ns)
            .get_opt("cfg")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Namespace>::all(t.client.clone())
            .get_opt(&ns)
            .await
            .unwrap()
            .is_none()
    );
}

async fn kubectl_annotate_edit_diff_and_wait_for_delete_work(t: Target) {
    let k = installed(&t, "1").await;
    let ns = t.ns_named("team-a");
    let resource = gadget_resource(&t);
    let api = gadgets(&t, "team-a");
    k.run(&["annotate", &resource, "g1", "-n", &ns, "note=hi"])
        .await;
    let g = api.get("g1").await.unwrap();
    assert_eq!(g.annotations()["note"], "hi");
    let editor = [("KUBE_EDITOR", "sed -i s/size:\\ 1/size:\\ 6/")];
    let (code, out, err) = k
        .run_env(&["edit", &resource, "g1", "-n", &ns], &editor)
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let g = api.get("g1").await.unwrap();
    assert_eq!(g.data["spec"]["size"], 6);
    let changed = k.write("changed.yaml", &objects(&t, "7"));
    let (code, diff, err) = k.run_env(&["diff", "-f", &changed], &[]).await;
    assert_eq!(
        code, 1,
        "kubectl diff exits 1 when there are differences: {err}"
    );
    assert!(diff.contains("+  size: 7"), "{diff}");
    assert_eq!(
        api.get("g1").await.unwrap().data["spec"]["size"],
        6,
        "diff is a dry run"
    );
    let gadget = format!("{resource}/g1");
    let args = ["wait", "--for=delete", &gadget, "-n", &ns, "--timeout=20s"];
    let waiting = k.run(&args);
    let delete = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.delete("g1", &Default::default()).await.unwrap();
    };
    let (out, ()) = tokio::join!(waiting, delete);
    assert!(
        out.contains("deleted") || out.contains("condition met"),
        "{out}"
    );
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_annotate_edit_diff_and_wait_for_delete_work
);
