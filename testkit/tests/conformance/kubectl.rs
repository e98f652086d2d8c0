//! The installed kubectl, used as a user types it, against the emulator through a kubeconfig.

use crate::emulator;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::apiserver::Emulator;

pub const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd], categories: [toys]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the gadget should be.
            properties:
              size: {type: integer, description: How big the gadget is.}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

const OBJECTS: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: g1, namespace: team-a}
spec: {size: SIZE}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: team-a}
data: {a: "SIZE"}
"#;

/// kubectl with its own kubeconfig and discovery cache directory.
struct Kubectl {
    dir: PathBuf,
}

impl Kubectl {
    fn new(emu: &Emulator) -> Self {
        let port = emu.url().rsplit(':').next().unwrap_or("0").to_string();
        let dir =
            std::env::temp_dir().join(format!("patchbay-kubectl-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        emu.write_kubeconfig(dir.join("kubeconfig")).unwrap();
        Kubectl { dir }
    }

    fn write(&self, name: &str, content: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(self.dir.join("kubeconfig"));
        c.arg("--cache-dir").arg(self.dir.join("cache"));
        c.args(args);
        c
    }

    /// Runs kubectl off the async runtime; returns stdout, failing the test on a non-zero exit.
    async fn run(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run_env(args, &[]).await;
        assert_eq!(
            code,
            0,
            "kubectl {} failed: {stderr}\n{stdout}",
            args.join(" ")
        );
        stdout
    }

    /// Runs kubectl with extra environment; returns exit code, stdout and stderr.
    async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("kubectl is installed");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A started emulator, a client, and kubectl with the Gadget CRD and OBJECTS applied.
async fn installed(size: &str) -> (Emulator, Client, Kubectl) {
    let emu = emulator().await;
    let client = emu.client();
    let k = Kubectl::new(&emu);
    k.run(&["apply", "-f", &k.write("crd.yaml", CRD)]).await;
    k.run(&[
        "apply",
        "-f",
        &k.write("objects.yaml", &OBJECTS.replace("SIZE", size)),
    ])
    .await;
    (emu, client, k)
}

fn gadgets(client: &Client, ns: &str) -> Api<kube::core::DynamicObject> {
    let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "example.com",
        "v1",
        "Gadget",
    ));
    Api::namespaced_with(client.clone(), ns, &ar)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_creates_then_configures_crds_and_objects_client_side() {
    let (_emu, client, k) = installed("1").await;
    let out = k
        .run(&[
            "apply",
            "-f",
            &k.write("objects2.yaml", &OBJECTS.replace("SIZE", "2")),
        ])
        .await;
    assert!(out.contains("gadget.example.com/g1 configured"), "{out}");
    assert!(out.contains("namespace/team-a unchanged"), "{out}");
    let g = gadgets(&client, "team-a").get("g1").await.unwrap();
    assert_eq!(g.data["spec"]["size"], 2);
    assert!(
        g.annotations()
            .contains_key("kubectl.kubernetes.io/last-applied-configuration")
    );
    let cm = Api::<ConfigMap>::namespaced(client, "team-a")
        .get("cfg")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_server_side_creates_objects_owned_by_kubectl() {
    let emu = emulator().await;
    let client = emu.client();
    let k = Kubectl::new(&emu);
    k.run(&["apply", "--server-side", "-f", &k.write("crd.yaml", CRD)])
        .await;
    let out = k
        .run(&[
            "apply",
            "--server-side",
            "-f",
            &k.write("o.yaml", &OBJECTS.replace("SIZE", "3")),
        ])
        .await;
    assert!(
        out.contains("gadget.example.com/g1 serverside-applied"),
        "{out}"
    );
    let g = gadgets(&client, "team-a").get("g1").await.unwrap();
    let managers: Vec<_> = g
        .managed_fields()
        .iter()
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    assert_eq!(
        managers,
        vec![(Some("kubectl".into()), Some("Apply".into()))]
    );
}

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
async fn kubectl_create_subcommands_work_although_they_send_protobuf() {
    let emu = emulator().await;
    let client = emu.client();
    let k = Kubectl::new(&emu);
    k.run(&["create", "namespace", "ci"]).await;
    let pem = k.write(
        "key.pem",
        "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n",
    );
    k.run(&[
        "create",
        "secret",
        "generic",
        "app",
        "-n",
        "ci",
        &format!("--from-file=private-key.pem={pem}"),
    ])
    .await;
    k.run(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "ci",
        "--from-literal=mode=fast",
    ])
    .await;
    k.run(&["create", "serviceaccount", "bot", "-n", "ci"])
        .await;
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "ci")
        .get("app")
        .await
        .unwrap();
    let key = &secret.data.unwrap()["private-key.pem"];
    assert!(String::from_utf8_lossy(&key.0).starts_with("-----BEGIN RSA PRIVATE KEY-----\nabc"));
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "ci")
        .get("settings")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["mode"], "fast");
    let sa = Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client, "ci")
        .get("bot")
        .await;
    assert!(sa.is_ok());
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
