//! kubectl apply (client- and server-side) and kubectl create. Every scenario runs on both
//! servers.

use super::{Kubectl, crd, gadgets, installed, objects, suffix};
use crate::Target;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::api::Api;

async fn kubectl_apply_creates_then_configures_crds_and_objects_client_side(t: Target) {
    let k = installed(&t, "1").await;
    let out = k
        .run(&["apply", "-f", &k.write("objects2.yaml", &objects(&t, "2"))])
        .await;
    let ns = t.ns_named("team-a");
    assert!(
        out.contains(&format!("gadget.{}/g1 configured", t.group())),
        "{out}"
    );
    assert!(out.contains(&format!("namespace/{ns} unchanged")), "{out}");
    let g = gadgets(&t, "team-a").get("g1").await.unwrap();
    assert_eq!(g.data["spec"]["size"], 2);
    assert!(
        g.annotations()
            .contains_key("kubectl.kubernetes.io/last-applied-configuration")
    );
    let cm = Api::<ConfigMap>::namespaced(t.client.clone(), &ns)
        .get("cfg")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "2");
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_apply_creates_then_configures_crds_and_objects_client_side
);

async fn kubectl_apply_server_side_creates_objects_owned_by_kubectl(t: Target) {
    let k = Kubectl::new(&t);
    let crd = k.write("crd.yaml", &crd(&t.group(), &suffix(&t)));
    k.run(&["apply", "--server-side", "-f", &crd]).await;
    k.establish(&t).await;
    let out = k
        .apply_retrying(&k.write("o.yaml", &objects(&t, "3")), &["--server-side"])
        .await;
    assert!(
        out.contains(&format!("gadget.{}/g1 serverside-applied", t.group())),
        "{out}"
    );
    let g = gadgets(&t, "team-a").get("g1").await.unwrap();
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
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_apply_server_side_creates_objects_owned_by_kubectl
);

async fn kubectl_create_subcommands_work_although_they_send_protobuf(t: Target) {
    let client = t.client.clone();
    let k = Kubectl::new(&t);
    let ci = t.ns_named("ci");
    k.run(&["create", "namespace", &ci]).await;
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
        &ci,
        &format!("--from-file=private-key.pem={pem}"),
    ])
    .await;
    k.run(&[
        "create",
        "configmap",
        "settings",
        "-n",
        &ci,
        "--from-literal=mode=fast",
    ])
    .await;
    k.run(&["create", "serviceaccount", "bot", "-n", &ci]).await;
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &ci)
        .get("app")
        .await
        .unwrap();
    let key = &secret.data.unwrap()["private-key.pem"];
    assert!(String::from_utf8_lossy(&key.0).starts_with("-----BEGIN RSA PRIVATE KEY-----\nabc"));
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ci)
        .get("settings")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["mode"], "fast");
    let sa = Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client, &ci)
        .get("bot")
        .await;
    assert!(sa.is_ok());
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_create_subcommands_work_although_they_send_protobuf
);

/// The example build Pods of `examples/tokens/`, moved into namespace `ns`.
fn build_pods(ns: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/tokens/build-pod.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(text.contains("namespace: team-a"), "{path} names team-a");
    text.replace("namespace: team-a", &format!("namespace: {ns}"))
}

async fn kubectl_apply_stores_the_example_build_pods_which_stay_pending(t: Target) {
    let k = Kubectl::new(&t);
    let ns = t.ns();
    let out = k
        .run(&["apply", "-f", &k.write("pods.yaml", &build_pods(ns))])
        .await;
    assert!(
        out.contains("pod/checkout created") && out.contains("pod/deploy created"),
        "{out}"
    );
    let pods: Api<Pod> = t.api();
    let deploy = pods.get("deploy").await.unwrap();
    let spec = deploy.spec.clone().unwrap();
    let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["short-task", "long-task"]);
    assert_eq!(
        (
            spec.restart_policy.as_deref(),
            spec.containers[0].image_pull_policy.as_deref()
        ),
        (Some("Never"), Some("IfNotPresent")),
        "as written, and defaulted"
    );
    let status = deploy.status.unwrap();
    assert_eq!(
        (status.phase.as_deref(), status.qos_class.as_deref()),
        (Some("Pending"), Some("BestEffort"))
    );
    let again = k
        .run(&["apply", "-f", &k.write("pods.yaml", &build_pods(ns))])
        .await;
    assert!(again.contains("pod/checkout unchanged"), "{again}");
    let newer = build_pods(ns).replace("alpine/git:2.45.2", "alpine/git:2.45.3");
    let out = k
        .run(&["apply", "-f", &k.write("newer.yaml", &newer)])
        .await;
    assert!(out.contains("pod/checkout configured"), "{out}");
    let checkout = pods.get("checkout").await.unwrap();
    let git = &checkout.spec.unwrap().containers[0];
    assert_eq!(
        (
            git.image.as_deref(),
            git.volume_mounts.as_ref().map(Vec::len)
        ),
        (Some("alpine/git:2.45.3"), Some(2)),
        "a new image is all that changed"
    );
    let table = k.run(&["get", "pods", "-n", ns]).await;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().take(4).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["NAME", "READY", "STATUS", "RESTARTS"],
            vec!["checkout", "0/1", "Pending", "0"],
            vec!["deploy", "0/2", "Pending", "0"]
        ],
        "{table}"
    );
    // Never scheduled, so deleted at once (no kubelet to wait for).
    let out = k
        .run(&["delete", "-f", &k.write("newer.yaml", &newer)])
        .await;
    assert!(out.contains("pod \"deploy\" deleted"), "{out}");
    assert!(
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    kubectl_apply_stores_the_example_build_pods_which_stay_pending
);
