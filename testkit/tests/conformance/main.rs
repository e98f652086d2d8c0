//! Conformance of the Kubernetes API emulator, through the real kube client, the real
//! `Controller`, and the installed kubectl.
//!
//! Every scenario that does not need the emulator's test controls runs twice: on a fresh
//! emulator and on a real kube-apiserver with etcd ([`testkit::envtest::ApiServer`], one per
//! test process, shared by its tests). A scenario is an `async fn(Target)`; [`on_both!`] turns
//! it into a module with the tests `on_the_emulator` and `on_kube_apiserver`. Tests on the
//! shared server run side by side, so each works in namespaces of its own ([`Target::ns`]) and
//! gives the CRDs it creates a group of its own ([`Target::group`]). Where the two servers
//! differ on purpose, the test says so and `testkit/README.md` lists the difference.

/// Turns each `async fn name(t: Target)` scenario into `mod name` with two tests: one on a
/// fresh emulator, one on the shared real kube-apiserver. An optional leading test attribute
/// replaces `#[tokio::test]`.
macro_rules! on_both {
    (#[$test:meta] $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[$test]
            async fn on_the_emulator() {
                super::$name(crate::Target::emulator().await).await
            }

            #[$test]
            async fn on_kube_apiserver() {
                super::$name(crate::Target::apiserver().await).await
            }
        }
    )+};
    ($($name:ident),+ $(,)?) => {
        on_both!(#[tokio::test] $($name),+);
    };
}

mod admission;
mod controller;
mod crud;
mod deletion;
mod faults;
mod kubectl;
mod patching;
mod robustness;
mod sandbox;
mod semantics;
mod watching;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, CustomResource, Resource};
use serde::{Deserialize, Serialize};
use serde_json::json;
use testkit::apiserver::{Emulator, EmulatorOptions};
use testkit::envtest::{ApiServer, Identity, TestServer};

/// A test custom resource: namespaced, status subresource, short name, category.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    schema = "disabled"
)]
pub struct WidgetSpec {
    /// Desired size.
    pub size: i64,
}

/// Status of a Widget.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
pub struct WidgetStatus {
    /// Whether the widget is ready.
    pub ready: bool,
}

/// The Widget CRD, with a structural schema, printer columns, short name and category.
pub fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                      "shortNames": ["wd"], "categories": ["toys"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A Widget is a test resource.",
                    "properties": {
                        "spec": {"type": "object", "description": "What the widget should be.",
                                 "properties": {"size": {"type": "integer", "description": "Desired size."}}},
                        "status": {"type": "object", "properties": {
                            "ready": {"type": "boolean"},
                            "conditions": {
                                "type": "array",
                                "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["type"],
                                "items": {"type": "object", "required": ["type"], "properties": {
                                    "type": {"type": "string"}, "status": {"type": "string"}
                                }}
                            }
                        }}
                    }
                }}
            }]
        }
    }))
    .expect("the Widget CRD literal is a valid CRD")
}

/// The label on every namespace of a test; its value is the test's id.
pub const TEST_LABEL: &str = "patchbay.dev/test";

/// The server a scenario runs on, an administrator's client, and the test's own namespace.
pub struct Target {
    /// The server (a fresh emulator, or the process's shared kube-apiserver).
    pub server: TestServer,
    /// An administrator's client.
    pub client: Client,
    id: String,
}

impl Target {
    /// A fresh emulator, with the test's namespace created.
    pub async fn emulator() -> Self {
        Self::on(TestServer::Emulator(emulator().await)).await
    }

    /// The process's shared kube-apiserver (started by the first test that asks), with the
    /// test's namespace created.
    pub async fn apiserver() -> Self {
        // Starting blocks for seconds; keep it off the test's runtime threads.
        let server = tokio::task::spawn_blocking(ApiServer::shared)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        Self::on(TestServer::ApiServer(server)).await
    }

    async fn on(server: TestServer) -> Self {
        let client = server.client(Identity::Admin).await;
        let t = Target {
            server,
            client,
            id: testkit::envtest::unique_id("c"),
        };
        t.namespace("").await;
        t
    }

    /// The emulator, when this is one (for its test controls).
    pub fn emulator_handle(&self) -> Option<&Emulator> {
        match &self.server {
            TestServer::Emulator(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is the real kube-apiserver.
    pub fn is_real(&self) -> bool {
        self.server.is_real()
    }

    /// This test's id, unique among the tests sharing a server.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The test's own namespace.
    pub fn ns(&self) -> &str {
        &self.id
    }

    /// The real name of the test's further namespace `logical` (`""`: [`Target::ns`]).
    pub fn ns_named(&self, logical: &str) -> String {
        match logical {
            "" => self.id.clone(),
            l => format!("{}-{l}", self.id),
        }
    }

    /// Creates the namespace [`Target::ns_named`]`(logical)`, labelled with the test's id, and
    /// returns its name.
    pub async fn namespace(&self, logical: &str) -> String {
        let name = self.ns_named(logical);
        let body = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {TEST_LABEL: self.id}},
        });
        Api::<Namespace>::all(self.client.clone())
            .patch(
                &name,
                &PatchParams::apply("conformance").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap_or_else(|e| panic!("namespace {name} on {}: {e}", self.server.describe()));
        name
    }

    /// An API group of the test's own, for the CRDs it creates (`<id>.example.com`).
    pub fn group(&self) -> String {
        format!("{}.example.com", self.id)
    }

    /// A namespaced API in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), self.ns())
    }

    /// Installs the Widget CRD (idempotently: server-side apply with force, as every test on
    /// the shared server does) and waits until Widgets are served.
    pub async fn with_widgets(self) -> Self {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let pp = PatchParams::apply("conformance").force();
        crds.patch("widgets.example.com", &pp, &Patch::Apply(widget_crd()))
            .await
            .unwrap_or_else(|e| panic!("the Widget CRD on {}: {e}", self.server.describe()));
        let widgets = self.widgets();
        eventually(30, "widgets to be served", || {
            let widgets = widgets.clone();
            async move { widgets.list(&Default::default()).await.ok() }
        })
        .await;
        self
    }

    /// Forgets the history before the latest resourceVersion, so that watches from an earlier
    /// one get 410 Gone: the emulator's history, or etcd's (compacted through its JSON
    /// gateway). The real server's watch cache keeps serving cached resources from its own
    /// window; Events are not cached, so their watches see the compaction at once.
    pub async fn compact_history(&self) {
        match &self.server {
            TestServer::Emulator(e) => e.compact_history(),
            TestServer::ApiServer(s) => {
                let rv = Api::<Namespace>::all(self.client.clone())
                    .list_metadata(&Default::default())
                    .await
                    .expect("namespaces list")
                    .metadata
                    .resource_version
                    .expect("a list has a resourceVersion");
                let url = format!("{}/v3/kv/compaction", s.etcd_url());
                let response = reqwest::Client::new()
                    .post(&url)
                    .json(&json!({"revision": rv, "physical": true}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{url}: {e}"));
                assert!(response.status().is_success(), "{url}: {response:?}");
            }
            TestServer::Kubeconfig => panic!("cannot compact the history of a user's cluster"),
        }
    }

    /// Widgets in the test's namespace, as dynamic objects.
    pub fn widgets(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), self.ns(), &widget_resource())
    }
}

/// An emulator with default options.
pub async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default())
        .await
        .expect("the emulator starts")
}

/// An emulator with the Widget CRD installed, and a client.
pub async fn with_widgets() -> (Emulator, Client) {
    let emu = emulator().await;
    let client = emu.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .expect("the Widget CRD is created");
    (emu, client)
}

/// The dynamic API resource for Widgets.
pub fn widget_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
}

/// A dynamic Widget object.
pub fn dyn_widget(name: &str, size: i64) -> DynamicObject {
    let mut o = DynamicObject::new(name, &widget_resource());
    o.data = json!({"spec": {"size": size}});
    o
}

pub use testkit::wait::eventually;
