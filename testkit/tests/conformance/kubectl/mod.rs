//! The installed kubectl, used as a user types it, against either server through a kubeconfig.
//! This module holds the harness; the tests are grouped by what the user does.
//!
//! Each test installs a Gadget CRD of its own (group `<id>.example.com`, short name `gd<id>`,
//! category `toys<id>`), since tests share the real server, and names the resource with its
//! group where the bare plural would be ambiguous there (`gadgets.<group>`).

mod apply;
mod change;
mod inspect;

use crate::{TEST_LABEL, Target, eventually};
use kube::api::Api;
use std::path::PathBuf;
use std::process::Command;
use testkit::envtest::Identity;

/// The Gadget CRD in `group`, its short name `gd<suffix>` and category `toys<suffix>`.
pub fn crd(group: &str, suffix: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd{suffix}], categories: [toys{suffix}]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the gadget should be.
            properties:
              size: {{type: integer, description: How big the gadget is.}}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#
    )
}

/// A namespace (labelled as the test's), a Gadget and a ConfigMap in it.
pub fn objects(t: &Target, size: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {ns}, labels: {{{TEST_LABEL}: {id}}}}}
---
apiVersion: {group}/v1
kind: Gadget
metadata: {{name: g1, namespace: {ns}}}
spec: {{size: {size}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: {ns}}}
data: {{a: "{size}"}}
"#,
        ns = t.ns_named("team-a"),
        id = t.id(),
        group = t.group(),
    )
}

/// The test's suffix for the Gadget's short name and category (its id without dashes).
pub fn suffix(t: &Target) -> String {
    t.id().replace('-', "")
}

/// The Gadget resource as kubectl names it unambiguously: `gadgets.<group>`.
pub fn gadget_resource(t: &Target) -> String {
    format!("gadgets.{}", t.group())
}

/// kubectl with its own kubeconfig and discovery cache directory.
pub struct Kubectl {
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(t: &Target) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "patchbay-kubectl-{}-{}",
            std::process::id(),
            t.id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = match t.emulator_handle() {
            Some(emu) => {
                let path = dir.join("kubeconfig");
                emu.write_kubeconfig(&path).unwrap();
                path
            }
            None => t
                .server
                .kubeconfig_path(Identity::Admin)
                .expect("the real server has a kubeconfig"),
        };
        Kubectl { dir, kubeconfig }
    }

    pub fn write(&self, name: &str, content: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(&self.kubeconfig);
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

/// kubectl for the test, with the test's Gadget CRD established and its [`objects`] applied.
pub async fn installed(t: &Target, size: &str) -> Kubectl {
    let k = Kubectl::new(t);
    k.run(&[
        "apply",
        "-f",
        &k.write("crd.yaml", &crd(&t.group(), &suffix(t))),
    ])
    .await;
    k.establish(t).await;
    k.apply_retrying(&k.write("objects.yaml", &objects(t, size)), &[])
        .await;
    k
}

impl Kubectl {
    /// Waits until the test's Gadget CRD is established.
    pub async fn establish(&self, t: &Target) {
        self.run(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/gadgets.{}", t.group()),
            "--timeout=30s",
        ])
        .await;
    }

    /// `kubectl apply -f file` with `extra` flags, retried while kubectl's discovery does not
    /// know a just established resource yet; returns stdout.
    pub async fn apply_retrying(&self, file: &str, extra: &[&str]) -> String {
        let mut args = vec!["apply", "-f", file];
        args.extend_from_slice(extra);
        eventually(30, "kubectl apply to find the new resource", || async {
            let (code, out, err) = self.run_env(&args, &[]).await;
            match code {
                0 => Some(out),
                _ if err.contains("ensure CRDs are installed first") => None,
                _ => panic!("kubectl {} failed: {err}\n{out}", args.join(" ")),
            }
        })
        .await
    }
}

/// The test's Gadgets in its namespace `logical`.
pub fn gadgets(t: &Target, logical: &str) -> Api<kube::core::DynamicObject> {
    let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        &t.group(),
        "v1",
        "Gadget",
    ));
    Api::namespaced_with(t.client.clone(), &t.ns_named(logical), &ar)
}
