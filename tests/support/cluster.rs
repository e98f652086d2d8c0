//! An emulated cluster with patchbay's CRDs installed and the real controllers running.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use patchbay::api::{Condition, Connection, PARENT_LABEL, VcsAuthToken, crd};
use patchbay::controller::{self, Context, Options};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use testkit::apiserver::{Emulator, EmulatorOptions};
use tokio::sync::oneshot;

/// The root namespace of every test cluster.
pub const ROOT: &str = "ci";

/// A running emulator with patchbay's CRDs and controllers.
pub struct Cluster {
    /// The emulator.
    pub emulator: Emulator,
    /// A client for it.
    pub client: Client,
    /// The controllers' shared context.
    pub ctx: Arc<Context>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    /// Starts a cluster with the root namespace `ci` and default operator options.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// Starts a cluster; `allow_default_chain` is the operator flag of that name.
    pub async fn start_with(allow_default_chain: bool) -> Self {
        let emulator = Emulator::start(EmulatorOptions::default())
            .await
            .expect("emulator starts");
        let client = emulator.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for (_, crd) in crd::all() {
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("CRD installs");
        }
        let cluster_client = client.clone();
        eventually(10, "the CRDs to be served", || {
            let c = cluster_client.clone();
            async move {
                Api::<Connection>::all(c)
                    .list(&Default::default())
                    .await
                    .ok()
            }
        })
        .await;
        let (stop, stopped) = oneshot::channel::<()>();
        let options = Options {
            root_namespace: ROOT.into(),
            allow_default_credential_chain: allow_default_chain,
        };
        let (ctx, operator) = controller::start(client.clone(), options, async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(operator);
        let cluster = Self {
            emulator,
            client,
            ctx,
            stop: Some(stop),
            task: Some(task),
        };
        cluster.namespace(ROOT, None).await;
        cluster
    }

    /// Creates (or relabels) a namespace with an optional parent label.
    pub async fn namespace(&self, name: &str, parent: Option<&str>) {
        let labels: BTreeMap<String, String> = parent
            .map(|p| (PARENT_LABEL.to_string(), p.to_string()))
            .into_iter()
            .collect();
        self.namespace_with_labels(name, labels).await;
    }

    /// Creates a namespace with exactly these labels, or replaces its labels.
    pub async fn namespace_with_labels(&self, name: &str, labels: BTreeMap<String, String>) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut ns = api.get_opt(name).await.unwrap().unwrap_or_default();
        ns.metadata.name = Some(name.into());
        ns.metadata.labels = Some(labels);
        ns.metadata.managed_fields = None;
        let body = serde_json::to_value(&ns).unwrap();
        api.patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("namespace applies");
    }

    /// Server-side applies any object given as JSON.
    pub async fn apply(&self, object: Value) {
        let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let gvk: kube::core::GroupVersionKind = serde_json::from_value(json!({
            "group": object["apiVersion"].as_str().unwrap().rsplit_once('/').map(|(g, _)| g).unwrap_or(""),
            "version": object["apiVersion"].as_str().unwrap().rsplit('/').next().unwrap(),
            "kind": object["kind"],
        }))
        .unwrap();
        let (ar, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .expect("kind is served");
        let api: Api<kube::core::DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), &ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        api.patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("{name} applies: {e}"));
    }

    /// Creates an Opaque Secret with string data.
    pub async fn secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        self.apply(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": data,
        }))
        .await;
    }

    /// Deletes a namespaced object of type `K`.
    pub async fn delete<K>(&self, namespace: &str, name: &str)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete succeeds");
    }

    /// Waits until Connection `namespace/name` has a Ready condition for its generation that
    /// satisfies `check`, and returns that condition.
    pub async fn connection_ready(
        &self,
        namespace: &str,
        name: &str,
        check: impl Fn(&Condition) -> bool,
    ) -> Condition {
        let api: Api<Connection> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("Connection {namespace}/{name} Ready condition");
        eventually(30, &what, || {
            let api = api.clone();
            let check = &check;
            async move {
                let c = api.get_opt(name).await.ok()??;
                ready_for_generation(
                    c.status.as_ref()?.conditions.as_slice(),
                    c.meta().generation,
                )
                .filter(|r| check(r))
                .cloned()
            }
        })
        .await
    }

    /// Waits until VcsAuthToken `namespace/name` has a Ready condition for its generation that
    /// satisfies `check`, and returns the token.
    pub async fn token_ready(
        &self,
        namespace: &str,
        name: &str,
        check: impl Fn(&Condition) -> bool,
    ) -> VcsAuthToken {
        let api: Api<VcsAuthToken> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("VcsAuthToken {namespace}/{name} Ready condition");
        eventually(30, &what, || {
            let api = api.clone();
            let check = &check;
            async move {
                let t = api.get_opt(name).await.ok()??;
                let ok = ready_for_generation(
                    t.status.as_ref()?.conditions.as_slice(),
                    t.meta().generation,
                )
                .is_some_and(check);
                ok.then_some(t)
            }
        })
        .await
    }

    /// Stops the controllers and starts fresh ones (empty caches, new clients), as an operator
    /// restart does.
    pub async fn restart_controllers(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let options = self.ctx.options.clone();
        let (ctx, operator) = controller::start(self.emulator.client(), options, async {
            let _ = stopped.await;
        });
        self.ctx = ctx;
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(operator));
    }

    /// How many times the controllers reconciled `Kind ns/name`.
    pub fn reconciles(&self, key: &str) -> u64 {
        self.ctx.reconcile_count(key)
    }

    /// Stops the controllers and the emulator.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn ready_for_generation(conditions: &[Condition], generation: Option<i64>) -> Option<&Condition> {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.observed_generation == generation)
}

/// The name of an object, for messages.
pub fn name_of(o: &impl ResourceExt) -> String {
    o.name_any()
}

/// A Ready condition check on the reason.
pub fn reason(expected: &'static str) -> impl Fn(&Condition) -> bool {
    move |c| c.reason == expected
}

pub use testkit::wait::eventually;

/// Reads a Secret's data as text, for assertions.
pub async fn secret_text(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Option<BTreeMap<String, String>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let s = api.get_opt(name).await.ok()??;
    Some(
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect(),
    )
}
