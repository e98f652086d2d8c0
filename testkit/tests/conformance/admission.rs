//! Custom objects are admitted like the real API server admits them: pruned, defaulted, checked
//! against the structural schema and the CRD's CEL rules, refused with 422 Invalid naming fields.

use crate::{emulator, eventually};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

fn gadget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"}
                            },
                            "x-kubernetes-validations": [
                                {"rule": "self.size % 2 == 0", "message": "size must be even"}
                            ]
                        },
                        "status": {"type": "object", "properties": {"phase": {"type": "string", "maxLength": 5}}}
                    }
                }}
            }]
        }
    }))
    .expect("the Gadget CRD literal is a valid CRD")
}

fn gadgets(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Gadget"));
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn gadget(spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g"}, "spec": spec,
    }))
    .unwrap()
}

async fn with_gadgets() -> (testkit::apiserver::Emulator, Api<DynamicObject>) {
    let emu = emulator().await;
    let client = emu.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &gadget_crd())
        .await
        .unwrap();
    let api = gadgets(&client);
    eventually(5, "the gadget resource to be served", || {
        let api = api.clone();
        async move { api.list(&Default::default()).await.ok() }
    })
    .await;
    (emu, api)
}

fn invalid(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) if s.code == 422 && s.reason == "Invalid" => s,
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn an_object_breaking_the_schema_is_refused_with_causes_naming_the_field() {
    let (_emu, api) = with_gadgets().await;
    let err = api
        .create(&PostParams::default(), &gadget(json!({"size": 12})))
        .await
        .unwrap_err();
    let status = invalid(err);
    assert!(
        status
            .message
            .starts_with("Gadget.example.com \"g\" is invalid: spec.size"),
        "{}",
        status.message
    );
    let causes = status.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.size");
}

#[tokio::test]
async fn a_missing_required_field_is_refused() {
    let (_emu, api) = with_gadgets().await;
    let status = invalid(
        api.create(&PostParams::default(), &gadget(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.details.unwrap().causes[0].field, "spec.size");
}

#[tokio::test]
async fn a_cel_rule_refuses_with_its_message() {
    let (_emu, api) = with_gadgets().await;
    let status = invalid(
        api.create(&PostParams::default(), &gadget(json!({"size": 3})))
            .await
            .unwrap_err(),
    );
    assert!(
        status.message.contains("size must be even"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn admitted_objects_are_defaulted_and_pruned() {
    let (_emu, api) = with_gadgets().await;
    let created = api
        .create(
            &PostParams::default(),
            &gadget(json!({"size": 4, "typo": true})),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"], json!({"size": 4, "color": "red"}));
}

#[tokio::test]
async fn updates_and_status_writes_are_admitted_too() {
    let (_emu, api) = with_gadgets().await;
    api.create(&PostParams::default(), &gadget(json!({"size": 4})))
        .await
        .unwrap();
    let bad_spec = Patch::Merge(json!({"spec": {"color": "green"}}));
    invalid(
        api.patch("g", &PatchParams::default(), &bad_spec)
            .await
            .unwrap_err(),
    );
    let bad_status = Patch::Merge(json!({"status": {"phase": "much-too-long"}}));
    invalid(
        api.patch_status("g", &PatchParams::default(), &bad_status)
            .await
            .unwrap_err(),
    );
    let ok_status = Patch::Merge(json!({"status": {"phase": "ok"}}));
    let patched = api
        .patch_status("g", &PatchParams::default(), &ok_status)
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["phase"], "ok");
}
