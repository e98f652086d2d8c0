//! Conformance of the Kubernetes API emulator, through the real kube client, the real
//! `Controller`, and the installed kubectl.

mod admission;
mod controller;
mod crud;
mod faults;
mod kubectl;
mod patching;
mod robustness;
mod sandbox;
mod semantics;
mod watching;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, CustomResource};
use serde::{Deserialize, Serialize};
use serde_json::json;
use testkit::apiserver::{Emulator, EmulatorOptions};

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
                                "items": {"type": "object", "properties": {
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
