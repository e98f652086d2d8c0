//! Custom objects are admitted like the real API server admits them: pruned, defaulted, checked
//! against the structural schema and the CRD's CEL rules, refused with 422 Invalid naming fields.
//! Every scenario runs on both servers, each test with a Gadget CRD in a group of its own.

use crate::{Target, eventually};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

fn gadget_crd(group: &str) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {
            "group": group,
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

fn gadget(t: &Target, spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("{}/v1", t.group()), "kind": "Gadget",
        "metadata": {"name": "g"}, "spec": spec,
    }))
    .unwrap()
}

/// Gadgets in the test's namespace, once the test's Gadget CRD serves them.
async fn with_gadgets(t: &Target) -> Api<DynamicObject> {
    Api::<CustomResourceDefinition>::all(t.client.clone())
        .create(&PostParams::default(), &gadget_crd(&t.group()))
        .await
        .unwrap();
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&t.group(), "v1", "Gadget"));
    let api: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), t.ns(), &ar);
    eventually(30, "the gadget resource to be served", || {
        let api = api.clone();
        async move { api.list(&Default::default()).await.ok() }
    })
    .await;
    api
}

fn invalid(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) if s.code == 422 && s.reason == "Invalid" => s,
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

async fn an_object_breaking_the_schema_is_refused_with_causes_naming_the_field(t: Target) {
    let api = with_gadgets(&t).await;
    let err = api
        .create(&PostParams::default(), &gadget(&t, json!({"size": 12})))
        .await
        .unwrap_err();
    let status = invalid(err);
    let prefix = format!("Gadget.{} \"g\" is invalid: spec.size", t.group());
    assert!(status.message.starts_with(&prefix), "{}", status.message);
    let causes = status.details.unwrap().causes;
    assert_eq!(
        (causes[0].field.as_str(), causes[0].reason.as_str()),
        ("spec.size", "FieldValueInvalid")
    );
}
on_both!(an_object_breaking_the_schema_is_refused_with_causes_naming_the_field);

async fn a_missing_required_field_is_refused(t: Target) {
    let api = with_gadgets(&t).await;
    let status = invalid(
        api.create(&PostParams::default(), &gadget(&t, json!({})))
            .await
            .unwrap_err(),
    );
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("spec.size", "FieldValueRequired")
    );
}
on_both!(a_missing_required_field_is_refused);

async fn a_cel_rule_refuses_with_its_message(t: Target) {
    let api = with_gadgets(&t).await;
    let status = invalid(
        api.create(&PostParams::default(), &gadget(&t, json!({"size": 3})))
            .await
            .unwrap_err(),
    );
    assert!(
        status.message.contains("size must be even"),
        "{}",
        status.message
    );
}
on_both!(a_cel_rule_refuses_with_its_message);

async fn admitted_objects_are_defaulted_and_pruned(t: Target) {
    let api = with_gadgets(&t).await;
    let created = api
        .create(
            &PostParams::default(),
            &gadget(&t, json!({"size": 4, "typo": true})),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"], json!({"size": 4, "color": "red"}));
}
on_both!(admitted_objects_are_defaulted_and_pruned);

async fn updates_and_status_writes_are_admitted_too(t: Target) {
    let api = with_gadgets(&t).await;
    api.create(&PostParams::default(), &gadget(&t, json!({"size": 4})))
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
on_both!(updates_and_status_writes_are_admitted_too);

/// A CRD of the test's group with one version (storage unless `storage` is false) and `schema`.
fn thing_crd(t: &Target, name: &str, scope: &str, storage: bool, schema: Option<Value>) -> Value {
    let mut version = json!({"name": "v1", "served": true, "storage": storage});
    if let Some(s) = schema {
        version["schema"] = json!({"openAPIV3Schema": s});
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": t.group(),
            "scope": scope,
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [version],
        }
    })
}

async fn crds_the_real_server_refuses_are_refused_with_its_causes(t: Target) {
    let crds: Api<CustomResourceDefinition> = Api::all(t.client.clone());
    let name = format!("things.{}", t.group());
    let object = json!({"type": "object"});
    let untyped = json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}});
    let loose_keys = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
    }}}});
    let root = "spec.validation.openAPIV3Schema";
    let cases = [
        (
            thing_crd(&t, "things", "Namespaced", true, Some(object.clone())),
            vec![("metadata.name".to_string(), "FieldValueInvalid")],
        ),
        (
            thing_crd(&t, &name, "Namespaced", true, None),
            vec![(
                "spec.versions[0].schema.openAPIV3Schema".to_string(),
                "FieldValueRequired",
            )],
        ),
        (
            thing_crd(&t, &name, "Weird", true, Some(object.clone())),
            vec![("spec.scope".to_string(), "FieldValueNotSupported")],
        ),
        (
            thing_crd(&t, &name, "Namespaced", false, Some(object)),
            vec![
                ("spec.versions".to_string(), "FieldValueInvalid"),
                ("status.storedVersions".to_string(), "FieldValueInvalid"),
            ],
        ),
        (
            thing_crd(&t, &name, "Namespaced", true, Some(untyped)),
            vec![(
                format!("{root}.properties[spec].type"),
                "FieldValueRequired",
            )],
        ),
        (
            thing_crd(&t, &name, "Namespaced", true, Some(loose_keys)),
            vec![(
                format!("{root}.properties[spec].properties[items].items.properties[name].default"),
                "FieldValueRequired",
            )],
        ),
    ];
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    for (crd, expected) in cases {
        let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
        let status = invalid(crds.create(&dry, &crd).await.unwrap_err());
        let causes: Vec<(String, &str)> = status
            .details
            .as_ref()
            .unwrap()
            .causes
            .iter()
            .map(|c| (c.field.clone(), c.reason.as_str()))
            .collect();
        assert_eq!(causes, expected, "{}", status.message);
    }
}
on_both!(crds_the_real_server_refuses_are_refused_with_its_causes);

async fn patchbays_own_crds_are_accepted(t: Target) {
    let crds: Api<CustomResourceDefinition> = Api::all(t.client.clone());
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    for file in ["connection.yaml", "vcsauthtoken.yaml"] {
        let path = format!("{}/../crds/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
        crds.create(&dry, &crd)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}
on_both!(patchbays_own_crds_are_accepted);
