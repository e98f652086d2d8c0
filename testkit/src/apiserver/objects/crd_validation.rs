//! What the real server checks in a CustomResourceDefinition before it accepts it, where
//! clients trip: names, scope, one storage version, a schema per version, and the structural
//! schema rules (typed fields, required or defaulted list-map keys). Causes carry the real
//! server's fields, reasons and words.

use crate::apiserver::error::Cause;
use crate::apiserver::store::meta;
use serde_json::{Value, json};

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn cause(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Cause {
    Cause {
        reason,
        field: field.into(),
        message: message.into(),
    }
}

/// The checks the real server makes that a client is likely to trip over, with its fields,
/// reasons and words; returns the causes of a 422.
pub fn validate(crd: &Value) -> Result<(), Vec<Cause>> {
    let mut causes = Vec::new();
    let (group, plural) = (s(crd, "/spec/group"), s(crd, "/spec/names/plural"));
    let required = |field: &str| cause("FieldValueRequired", field, "Required value");
    if group.is_empty() {
        causes.push(required("spec.group"));
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural"));
    }
    if s(crd, "/spec/names/kind").is_empty() {
        causes.push(required("spec.names.kind"));
    }
    let scope = s(crd, "/spec/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    let name = meta::meta_str(crd, "name");
    if name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage = versions
        .iter()
        .filter(|v| v.get("storage") == Some(&json!(true)))
        .count();
    if storage != 1 {
        causes.push(Cause::invalid(
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    if storage == 0 && crd.pointer("/status/storedVersions").is_none() {
        causes.push(Cause::invalid(
            "status.storedVersions",
            "Invalid value: null: must have at least one stored version",
        ));
    }
    let schemas: Vec<Option<&Value>> = versions
        .iter()
        .map(|v| {
            v.pointer("/schema/openAPIV3Schema")
                .filter(|s| s.is_object())
        })
        .collect();
    // The real server validates one schema shared by every version as `spec.validation`.
    let shared = schemas.windows(2).all(|w| w[0] == w[1]);
    for (i, schema) in schemas.iter().enumerate() {
        let at = if shared {
            "spec.validation.openAPIV3Schema".to_string()
        } else {
            format!("spec.versions[{i}].schema.openAPIV3Schema")
        };
        match schema {
            None => causes.push(required(&format!(
                "spec.versions[{i}].schema.openAPIV3Schema"
            ))),
            Some(schema) if !shared || i == 0 => schema_causes(schema, &at, true, &mut causes),
            Some(_) => {}
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

/// The structural-schema rules a client is likely to break: every specified field and array
/// item has a type (unless it preserves unknown fields or is int-or-string), and the keys of a
/// `x-kubernetes-list-type: map` list are required or defaulted.
fn schema_causes(schema: &Value, at: &str, root: bool, causes: &mut Vec<Cause>) {
    let typed = schema
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    if root && !typed {
        causes.push(cause(
            "FieldValueRequired",
            format!("{at}.type"),
            "Required value: must not be empty at the root",
        ));
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, p) in props {
            let field = format!("{at}.properties[{name}]");
            let p_flag = |k: &str| p.get(k) == Some(&json!(true));
            let p_typed = p
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty());
            if !p_typed
                && !p_flag("x-kubernetes-int-or-string")
                && !p_flag("x-kubernetes-preserve-unknown-fields")
            {
                causes.push(cause(
                    "FieldValueRequired",
                    format!("{field}.type"),
                    "Required value: must not be empty for specified object fields",
                ));
            }
            schema_causes(p, &field, false, causes);
        }
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        let field = format!("{at}.items");
        let i_typed = items
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty());
        let i_flag = |k: &str| items.get(k) == Some(&json!(true));
        if !i_typed
            && !i_flag("x-kubernetes-int-or-string")
            && !i_flag("x-kubernetes-preserve-unknown-fields")
        {
            causes.push(cause(
                "FieldValueRequired",
                format!("{field}.type"),
                "Required value: must not be empty for specified array items",
            ));
        }
        if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
            let required: Vec<&str> = items
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for key in schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let defaulted = items
                    .pointer(&format!("/properties/{key}/default"))
                    .is_some();
                if !required.contains(&key) && !defaulted {
                    causes.push(cause(
                        "FieldValueRequired",
                        format!("{field}.properties[{key}].default"),
                        "Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
            }
        }
        schema_causes(items, &field, false, causes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::objects::crd::test_crd as crd;

    #[test]
    fn a_crd_whose_name_is_not_plural_dot_group_is_invalid() {
        let mut c = crd();
        c["metadata"]["name"] = json!("widgets");
        let causes = validate(&c).unwrap_err();
        assert_eq!(causes[0].field, "metadata.name");
        let mut schemaless = crd();
        schemaless["spec"]["versions"][0]
            .as_object_mut()
            .unwrap()
            .remove("schema");
        assert_eq!(
            validate(&schemaless).unwrap_err()[0].field,
            "spec.versions[0].schema.openAPIV3Schema"
        );
        assert!(validate(&crd()).is_ok());
    }

    #[test]
    fn a_map_lists_keys_must_be_required_and_specified_fields_typed() {
        let mut c = crd();
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = json!({
            "type": "object",
            "properties": {
                "spec": {"properties": {"a": {"type": "string"}}},
                "status": {"type": "object", "properties": {"conditions": {
                    "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                    "items": {"type": "object", "properties": {"type": {"type": "string"}}}
                }}}
            }
        });
        c["spec"]["versions"].as_array_mut().unwrap().truncate(1);
        let fields: Vec<String> = validate(&c)
            .unwrap_err()
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.validation.openAPIV3Schema.properties[spec].type",
                "spec.validation.openAPIV3Schema.properties[status].properties[conditions].items.properties[type].default"
            ]
        );
    }
}
