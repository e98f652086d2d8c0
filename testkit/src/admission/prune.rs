//! Pruning of unknown fields, as apiextensions-apiserver's `pruning.PruneWithOptions` (with
//! the object root treated as an embedded resource) followed by
//! `structuraldefaulting.PruneNonNullableNullsWithoutDefaults`.

use serde_json::Value;

use super::schema::{self, Additional};

/// The fields every embedded resource (and the object root) keeps regardless of the schema.
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Drops every field `schema` does not know from `obj`, in place, as the apiserver does on
/// create and update. `apiVersion`, `kind` and `metadata` survive at the root and in
/// `x-kubernetes-embedded-resource` objects (metadata is kept whole; the apiserver would also
/// prune it to `ObjectMeta`). Below `x-kubernetes-preserve-unknown-fields: true` unknown fields
/// survive while declared ones are still pruned inside. `additionalProperties` values follow
/// their schema; `additionalProperties: true` keeps the keys but, like the apiserver (which
/// has no schema for them), empties objects nested in them. Finally a `null` under a declared
/// property that is neither `nullable` nor defaulted is removed, as the apiserver's decoder does.
pub fn prune(schema: &Value, obj: &mut Value) {
    node(obj, Some(schema), true);
    nulls(schema, obj);
}

fn node(v: &mut Value, s: Option<&Value>, root: bool) {
    if let Some(s) = s
        && schema::flag(s, "x-kubernetes-preserve-unknown-fields")
    {
        skip(v, s, root);
        return;
    }
    match v {
        Value::Object(map) => {
            let Some(s) = s else {
                map.clear();
                return;
            };
            let embedded = root || schema::flag(s, "x-kubernetes-embedded-resource");
            map.retain(|key, _| {
                (embedded && META_FIELDS.contains(&key.as_str()))
                    || schema::properties(s).is_some_and(|p| p.contains_key(key))
                    || !matches!(schema::additional(s), Additional::None)
            });
            for (key, child) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                node(child, child_schema(s, key), false);
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(schema::items);
            for item in items {
                node(item, item_schema, false);
            }
        }
        _ => {}
    }
}

/// The schema for `key`; `None` under `additionalProperties: true` (nothing is known there).
fn child_schema<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    schema::properties(s)
        .and_then(|p| p.get(key))
        .or(match schema::additional(s) {
            Additional::Schema(extra) => Some(extra),
            _ => None,
        })
}

/// Below `x-kubernetes-preserve-unknown-fields`: keep unknown fields, prune inside known ones.
fn skip(v: &mut Value, s: &Value, root: bool) {
    match v {
        Value::Object(map) => {
            let embedded = root || schema::flag(s, "x-kubernetes-embedded-resource");
            for (key, child) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                let known = schema::properties(s).is_some_and(|p| p.contains_key(key))
                    || !matches!(schema::additional(s), Additional::None);
                if known {
                    node(child, child_schema(s, key), false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema::items(s) {
                for item in items {
                    skip(item, item_schema, false);
                }
            }
        }
        _ => {}
    }
}

/// `PruneNonNullableNullsWithoutDefaults`.
fn nulls(s: &Value, v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|key, child| {
                let Some(cs) = schema::child(s, key) else {
                    return true;
                };
                !(child.is_null() && cs.get("default").is_none() && !schema::flag(cs, "nullable"))
            });
            for (key, child) in map.iter_mut() {
                if let Some(cs) = schema::child(s, key) {
                    nulls(cs, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema::items(s) {
                for item in items {
                    nulls(item_schema, item);
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

    fn pruned(schema: Value, mut obj: Value) -> Value {
        prune(&schema, &mut obj);
        obj
    }

    fn crd(spec: Value) -> Value {
        json!({"type": "object", "properties": {"spec": spec}})
    }

    #[test]
    fn unknown_fields_are_dropped_at_every_level() {
        let s = crd(json!({"type": "object", "properties": {"name": {"type": "string"}}}));
        let obj = json!({"spec": {"name": "x", "typo": 1}, "extra": true});
        assert_eq!(pruned(s, obj), json!({"spec": {"name": "x"}}));
    }

    #[test]
    fn the_root_keeps_api_version_kind_and_metadata() {
        let s = crd(json!({"type": "object"}));
        let obj = json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {"gone": 1}});
        assert_eq!(
            pruned(s, obj),
            json!({"apiVersion": "patchbay.dev/v1alpha1", "kind": "Connection",
                "metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {}})
        );
    }

    #[test]
    fn preserve_unknown_fields_keeps_unknown_fields_but_prunes_inside_known_ones() {
        let s = crd(
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}}),
        );
        let obj = json!({"spec": {"anything": {"deep": [1]}, "known": {"a": "x", "b": "y"}}});
        assert_eq!(
            pruned(s, obj),
            json!({"spec": {"anything": {"deep": [1]}, "known": {"a": "x"}}})
        );
    }

    #[test]
    fn additional_properties_values_are_pruned_by_their_schema() {
        let s = crd(
            json!({"type": "object", "properties": {"perms": {"type": "object",
            "additionalProperties": {"type": "object", "properties": {"level": {"type": "string"}}}}}}),
        );
        let obj = json!({"spec": {"perms": {"contents": {"level": "read", "junk": 1}}}});
        assert_eq!(
            pruned(s, obj),
            json!({"spec": {"perms": {"contents": {"level": "read"}}}})
        );
    }

    #[test]
    fn embedded_resources_keep_their_meta_fields() {
        let s = crd(
            json!({"type": "object", "properties": {"template": {"type": "object",
            "x-kubernetes-embedded-resource": true, "properties": {"data": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true}}}}}),
        );
        let obj = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s"}, "data": {"k": "v"}, "stray": 1}}});
        assert_eq!(
            pruned(s, obj),
            json!({"spec": {"template": {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s"}, "data": {"k": "v"}}}})
        );
    }

    #[test]
    fn list_items_are_pruned_and_items_without_a_schema_lose_their_fields() {
        let s = crd(json!({"type": "object", "properties": {
            "typed": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "integer"}}}},
            "untyped": {"type": "array"}}}));
        let obj = json!({"spec": {"typed": [{"a": 1, "b": 2}], "untyped": [{"x": 1}, 3]}});
        assert_eq!(
            pruned(s, obj),
            json!({"spec": {"typed": [{"a": 1}], "untyped": [{}, 3]}})
        );
    }

    #[test]
    fn non_nullable_nulls_without_defaults_are_dropped() {
        let s = crd(json!({"type": "object", "properties": {
            "plain": {"type": "string"},
            "nullable": {"type": "string", "nullable": true},
            "defaulted": {"type": "string", "default": "d"}}}));
        let obj = json!({"spec": {"plain": null, "nullable": null, "defaulted": null}});
        assert_eq!(
            pruned(s, obj),
            json!({"spec": {"nullable": null, "defaulted": null}})
        );
    }

    #[test]
    fn malformed_schemas_do_not_panic() {
        assert_eq!(
            pruned(json!("x"), json!({"a": 1, "kind": "K"})),
            json!({"kind": "K"})
        );
        assert_eq!(
            pruned(json!({"properties": 5}), json!([{"a": 1}])),
            json!([{}])
        );
    }
}
