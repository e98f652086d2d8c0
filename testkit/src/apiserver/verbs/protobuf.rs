//! Decoding of Kubernetes protobuf request bodies for the built-in kinds kubectl's typed
//! clients send that way (`kubectl create namespace|secret|configmap|serviceaccount`).
//!
//! A body is the `k8s\0` magic and a `runtime.Unknown` envelope (`typeMeta` = 1, `raw` = 2)
//! whose `raw` is the object's message. Only the fields those commands set are decoded, into
//! the same JSON the kind's JSON form has; responses are always JSON, which kubectl accepts.

use crate::apiserver::objects::builtins::base64;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// How a field's value is encoded and shown.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Int,
    /// `meta.v1.Time`: seconds = 1, nanos = 2.
    Time,
    MapStr,
    MapBytes,
    Msg(&'static [F]),
}

/// One field: number, JSON name, type, repeated.
type F = (u32, &'static str, Ty, bool);

const OWNER_REF: &[F] = &[
    (1, "kind", Ty::Str, false),
    (3, "name", Ty::Str, false),
    (4, "uid", Ty::Str, false),
    (5, "apiVersion", Ty::Str, false),
    (6, "controller", Ty::Bool, false),
    (7, "blockOwnerDeletion", Ty::Bool, false),
];
const OBJECT_META: &[F] = &[
    (1, "name", Ty::Str, false),
    (2, "generateName", Ty::Str, false),
    (3, "namespace", Ty::Str, false),
    (5, "uid", Ty::Str, false),
    (6, "resourceVersion", Ty::Str, false),
    (7, "generation", Ty::Int, false),
    (8, "creationTimestamp", Ty::Time, false),
    (11, "labels", Ty::MapStr, false),
    (12, "annotations", Ty::MapStr, false),
    (13, "ownerReferences", Ty::Msg(OWNER_REF), true),
    (14, "finalizers", Ty::Str, true),
];
const OBJECT_REF: &[F] = &[
    (1, "kind", Ty::Str, false),
    (2, "namespace", Ty::Str, false),
    (3, "name", Ty::Str, false),
    (4, "uid", Ty::Str, false),
    (5, "apiVersion", Ty::Str, false),
];
const NAMESPACE: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (
        2,
        "spec",
        Ty::Msg(&[(1, "finalizers", Ty::Str, true)]),
        false,
    ),
];
const SECRET: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (2, "data", Ty::MapBytes, false),
    (3, "type", Ty::Str, false),
    (4, "stringData", Ty::MapStr, false),
    (5, "immutable", Ty::Bool, false),
];
const CONFIG_MAP: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (2, "data", Ty::MapStr, false),
    (3, "binaryData", Ty::MapBytes, false),
    (4, "immutable", Ty::Bool, false),
];
const SERVICE_ACCOUNT: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META), false),
    (2, "secrets", Ty::Msg(OBJECT_REF), true),
    (
        3,
        "imagePullSecrets",
        Ty::Msg(&[(1, "name", Ty::Str, false)]),
        true,
    ),
    (4, "automountServiceAccountToken", Ty::Bool, false),
];

/// Whether a body is a Kubernetes protobuf envelope.
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

struct Reader<'a>(&'a [u8]);

/// A field's payload: a varint (or skipped fixed-width value), or length-delimited bytes.
type Payload<'a> = Result<u64, &'a [u8]>;

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or("truncated varint")?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
        if n > self.0.len() {
            return Err("truncated field".into());
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b)
    }

    /// Next (field number, payload); payload is the varint value or the bytes.
    fn field(&mut self) -> Result<Option<(u32, Payload<'a>)>, String> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let num = u32::try_from(key >> 3).map_err(|_| "field number overflow")?;
        let payload = match key & 7 {
            0 => Ok(self.varint()?),
            2 => Err(self.bytes()?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                let skip = self.0.get(n..).ok_or("truncated fixed field")?;
                self.0 = skip;
                Ok(0)
            }
            t => return Err(format!("unsupported wire type {t}")),
        };
        Ok(Some((num, payload)))
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|e| format!("invalid UTF-8: {e}"))
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let (mut k, mut v) = (String::new(), json!(""));
    let mut r = Reader(b);
    while let Some((num, payload)) = r.field()? {
        match (num, payload) {
            (1, Err(b)) => k = utf8(b)?,
            (2, Err(b)) if bytes_value => v = json!(base64(b)),
            (2, Err(b)) => v = json!(utf8(b)?),
            _ => {}
        }
    }
    Ok((k, v))
}

fn time(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader(b);
    let mut secs = 0i64;
    while let Some((num, payload)) = r.field()? {
        if let (1, Ok(v)) = (num, payload) {
            secs = v as i64;
        }
    }
    let t = k8s_openapi::jiff::Timestamp::from_second(secs).map_err(|e| e.to_string())?;
    Ok(json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn message(b: &[u8], fields: &[F]) -> Result<Value, String> {
    let mut out = Map::new();
    let mut r = Reader(b);
    while let Some((num, payload)) = r.field()? {
        let Some(&(_, name, ty, repeated)) = fields.iter().find(|f| f.0 == num) else {
            continue;
        };
        let v = match (ty, payload) {
            (Ty::Str, Err(b)) => json!(utf8(b)?),
            (Ty::Bool, Ok(v)) => json!(v != 0),
            (Ty::Int, Ok(v)) => json!(v as i64),
            (Ty::Time, Err(b)) => time(b)?,
            (Ty::Msg(inner), Err(b)) => message(b, inner)?,
            (Ty::MapStr | Ty::MapBytes, Err(b)) => {
                let (k, v) = map_entry(b, matches!(ty, Ty::MapBytes))?;
                let m = out.entry(name).or_insert_with(|| json!({}));
                m[k.as_str()] = v;
                continue;
            }
            _ => return Err(format!("field {name} has an unexpected wire type")),
        };
        if repeated {
            let list = out.entry(name).or_insert_with(|| json!([]));
            if let Some(items) = list.as_array_mut() {
                items.push(v);
            }
        } else {
            out.insert(name.to_string(), v);
        }
    }
    Ok(Value::Object(out))
}

/// How the error for a well-formed envelope of a kind this decoder does not know starts (a 415;
/// other decoding errors are malformed bodies, a 400).
pub const UNSUPPORTED: &str = "protobuf bodies are not supported";

/// Decodes a protobuf body into the object's JSON form.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("missing the k8s protobuf magic")?;
    let mut r = Reader(envelope);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((num, payload)) = r.field()? {
        match (num, payload) {
            (1, Err(tm)) => {
                let mut t = Reader(tm);
                while let Some((n, p)) = t.field()? {
                    match (n, p) {
                        (1, Err(b)) => api_version = utf8(b)?,
                        (2, Err(b)) => kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, Err(b)) => raw = b,
            _ => {}
        }
    }
    let fields = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        _ => {
            return Err(format!("{UNSUPPORTED} for {api_version} {kind}; send JSON"));
        }
    };
    let mut obj = message(raw, fields)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            u8::try_from(num << 3 | 2).unwrap(),
            u8::try_from(payload.len()).unwrap(),
        ];
        v.extend_from_slice(payload);
        v
    }

    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        [field(1, k.as_bytes()), field(2, v)].concat()
    }

    fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, b"v1"), field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), field(1, &type_meta), field(2, raw)].concat()
    }

    #[test]
    fn a_secret_from_kubectl_create_secret_decodes_with_base64_data() {
        let meta = [
            field(1, b"s"),
            field(3, b"ns"),
            field(11, &entry("app", b"x")),
        ]
        .concat();
        let raw = [
            field(1, &meta),
            field(2, &entry("token", b"foo")),
            field(3, b"Opaque"),
        ]
        .concat();
        let v = decode(&envelope("Secret", &raw)).unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(
            v["metadata"],
            json!({"name": "s", "namespace": "ns", "labels": {"app": "x"}})
        );
        assert_eq!(v["data"], json!({"token": "Zm9v"}));
        assert_eq!(v["type"], "Opaque");
    }

    #[test]
    fn a_namespace_decodes_and_unknown_fields_are_skipped() {
        let meta = [field(1, b"team-a"), field(15, b"ignored")].concat();
        let v = decode(&envelope("Namespace", &field(1, &meta))).unwrap();
        assert_eq!(v["metadata"]["name"], "team-a");
        assert!(is_protobuf(&envelope("Namespace", &[])));
    }

    #[test]
    fn unsupported_kinds_and_truncated_bodies_are_errors_not_panics() {
        assert!(
            decode(&envelope("Pod", &[]))
                .unwrap_err()
                .contains("not supported")
        );
        let mut cut = envelope("Secret", &field(1, &field(1, b"name")));
        cut.truncate(cut.len() - 2);
        assert!(decode(&cut).is_err());
        assert!(decode(b"{}").is_err());
    }
}
