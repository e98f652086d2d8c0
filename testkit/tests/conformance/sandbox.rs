//! The sandbox: kubeconfig written, manifests installed, kubectl works through it. Emulator
//! only: the sandbox is an emulator.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use testkit::sandbox::{Sandbox, SandboxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_installs_manifests_writes_a_kubeconfig_and_serves_kubectl() {
    let dir = std::env::temp_dir().join(format!("patchbay-sandbox-{}", std::process::id()));
    let crds = dir.join("crds");
    std::fs::create_dir_all(&crds).unwrap();
    std::fs::write(
        crds.join("gadgets.yaml"),
        crate::kubectl::crd("example.com", ""),
    )
    .unwrap();
    let namespaces = dir.join("namespaces.yaml");
    std::fs::write(&namespaces, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ci}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {patchbay.dev/parent: ci}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n").unwrap();
    let kubeconfig = dir.join("sandbox/kubeconfig");
    let opts = SandboxOptions {
        kubeconfig: kubeconfig.clone(),
        manifests: vec![crds, namespaces],
        hints: vec!["kubectl get gadgets -A".into()],
        port: 0,
    };
    let sandbox = Sandbox::start(opts).await.unwrap();
    assert_eq!(
        sandbox.installed(),
        [
            "CustomResourceDefinition/gadgets.example.com",
            "Namespace/ci",
            "Namespace/team-a"
        ]
    );
    assert!(
        sandbox
            .banner()
            .contains(&format!("export KUBECONFIG={}", kubeconfig.display()))
    );
    let team = Api::<Namespace>::all(sandbox.client())
        .get("team-a")
        .await
        .unwrap();
    assert_eq!(team.metadata.labels.unwrap()["patchbay.dev/parent"], "ci");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "gadgets", "-A"])
            .output()
    })
    .await
    .unwrap()
    .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("No resources found"));
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
