//! Structural defaulting, as apiextensions-apiserver's `structuraldefaulting.Default` does it.

use serde_json::Value;

use super::schema::{self, Additional};

/// Fills in `default`s from `schema` (an `openAPIV3Schema`) into `obj`, in place: a declared
/// property that is absent, or `null` without `nullable: true`, gets its default; the walk then
/// recurses into objects (`properties` and `additionalProperties`) and array `items`, so
/// defaults nested inside a defaulted value apply too. Defaults under `allOf`/`anyOf`/`oneOf`/
/// `not` are ignored (structural schemas forbid them), and the root schema's own `default` is
/// never applied.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    walk(schema, obj);
}

fn nullable(s: &Value) -> bool {
    schema::flag(s, "nullable")
}

/// A `null` the apiserver replaces with the schema's default (`isNonNullableNull`).
fn fill_null(s: &Value, v: &mut Value) {
    if v.is_null()
        && !nullable(s)
        && let Some(d) = s.get("default")
    {
        *v = d.clone();
    }
}

fn walk(s: &Value, v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(props) = schema::properties(s) {
                for (key, prop) in props {
                    let Some(default) = prop.get("default") else {
                        continue;
                    };
                    let missing = map
                        .get(key)
                        .is_none_or(|cur| cur.is_null() && !nullable(prop));
                    if missing {
                        map.insert(key.clone(), default.clone());
                    }
                }
            }
            let props = schema::properties(s);
            for (key, child) in map.iter_mut() {
                if let Some(prop) = props.and_then(|p| p.get(key)) {
                    walk(prop, child);
                } else if let Additional::Schema(extra) = schema::additional(s) {
                    fill_null(extra, child);
                    walk(extra, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema::items(s) {
                for item in items {
                    fill_null(item_schema, item);
                    walk(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(schema: Value, mut obj: Value) -> Value {
        apply_defaults(&schema, &mut obj);
        obj
    }

    #[test]
    fn an_absent_property_gets_its_default() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "availableForSubProjects": {"type": "boolean", "default": true},
            "name": {"type": "string"}}}}});
        assert_eq!(
            defaulted(s, json!({"spec": {"name": "x"}})),
            json!({"spec": {"name": "x", "availableForSubProjects": true}})
        );
    }

    #[test]
    fn a_present_value_is_never_overwritten() {
        let s = json!({"properties": {"a": {"type": "boolean", "default": true}}});
        assert_eq!(defaulted(s, json!({"a": false})), json!({"a": false}));
    }

    #[test]
    fn a_non_nullable_null_is_defaulted_but_a_nullable_null_is_kept() {
        let s = json!({"properties": {
            "a": {"type": "string", "default": "d"},
            "b": {"type": "string", "nullable": true, "default": "d"}}});
        assert_eq!(
            defaulted(s, json!({"a": null, "b": null})),
            json!({"a": "d", "b": null})
        );
    }

    #[test]
    fn defaults_inside_a_defaulted_object_apply_too() {
        let s = json!({"properties": {"secret": {"type": "object", "default": {},
            "properties": {"deletionPolicy": {"type": "string", "default": "Delete"}}}}});
        assert_eq!(
            defaulted(s, json!({})),
            json!({"secret": {"deletionPolicy": "Delete"}})
        );
    }

    #[test]
    fn an_absent_object_without_a_default_stays_absent() {
        let s = json!({"properties": {"secret": {"type": "object",
            "properties": {"deletionPolicy": {"type": "string", "default": "Delete"}}}}});
        assert_eq!(defaulted(s, json!({})), json!({}));
    }

    #[test]
    fn array_items_and_map_values_are_defaulted() {
        let item =
            json!({"type": "object", "properties": {"weight": {"type": "integer", "default": 1}}});
        let s = json!({"properties": {
            "list": {"type": "array", "items": item},
            "map": {"type": "object", "additionalProperties": item}}});
        assert_eq!(
            defaulted(s, json!({"list": [{}, {"weight": 5}], "map": {"a": {}}})),
            json!({"list": [{"weight": 1}, {"weight": 5}], "map": {"a": {"weight": 1}}})
        );
    }

    #[test]
    fn null_array_items_take_the_item_default() {
        let s = json!({"properties": {"l": {"type": "array", "items": {"type": "string", "default": "x"}}}});
        assert_eq!(
            defaulted(s, json!({"l": [null, "y"]})),
            json!({"l": ["x", "y"]})
        );
    }

    #[test]
    fn defaults_in_logical_junctors_and_on_the_root_are_ignored() {
        let s = json!({"default": {"x": 1}, "properties": {"a": {"type": "object",
            "anyOf": [{"properties": {"b": {"default": 1}}}]}}});
        assert_eq!(defaulted(s.clone(), json!({"a": {}})), json!({"a": {}}));
        assert_eq!(defaulted(s, json!(null)), json!(null));
    }

    #[test]
    fn malformed_schemas_do_not_panic() {
        assert_eq!(
            defaulted(json!({"properties": 3, "items": "x"}), json!({"a": [1]})),
            json!({"a": [1]})
        );
        assert_eq!(
            defaulted(json!("nonsense"), json!([1, {"a": null}])),
            json!([1, {"a": null}])
        );
    }
}
