//! The installed kubectl, used as a user types it, against the emulator through a kubeconfig.
//! This module holds the harness; the tests are grouped by what the user does.

mod apply;
mod change;
mod inspect;

use crate::emulator;
use kube::Client;
use kube::api::Api;
use std::path::PathBuf;
use std::process::Command;
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

pub const OBJECTS: &str = r#"apiVersion: v1
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
pub struct Kubectl {
    dir: PathBuf,
}

impl Kubectl {
    pub fn new(emu: &Emulator) -> Self {
        let port = emu.url().rsplit(':').next().unwrap_or("0").to_string();
        let dir =
            std::env::temp_dir().join(format!("patchbay-kubectl-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        emu.write_kubeconfig(dir.join("kubeconfig")).unwrap();
        Kubectl { dir }
    }

    pub fn write(&self, name: &str, content: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(self.dir.join("kubeconfig"));
        c.arg("--cache-dir").arg(self.dir.join("cache"));
        c.args(args);
        c
    }

    /// Runs kubectl off the async runtime; returns stdout, failing the test on a non-zero exit.
    pub async fn run(&self, args: &[&str]) -> String {
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
    pub async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
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
pub async fn installed(size: &str) -> (Emulator, Client, Kubectl) {
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

pub fn gadgets(client: &Client, ns: &str) -> Api<kube::core::DynamicObject> {
    let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "example.com",
        "v1",
        "Gadget",
    ));
    Api::namespaced_with(client.clone(), ns, &ar)
}
