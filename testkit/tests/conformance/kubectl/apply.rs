//! kubectl apply (client- and server-side) and kubectl create.

use super::{CRD, Kubectl, OBJECTS, gadgets, installed};
use crate::emulator;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::Api;

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
