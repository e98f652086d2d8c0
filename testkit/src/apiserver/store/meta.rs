//! Small helpers over the `metadata` of JSON objects: names, timestamps, uids, validation.

use k8s_openapi::jiff;
use serde_json::{Map, Value};

/// The current time as the API server writes it (`2026-01-02T03:04:05Z`).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Seconds since an RFC 3339 timestamp, if it parses.
pub fn seconds_since(ts: &str) -> Option<i64> {
    let t: jiff::Timestamp = ts.parse().ok()?;
    Some(jiff::Timestamp::now().as_second() - t.as_second())
}

/// A short human duration like kubectl's AGE column: `42s`, `5m`, `3h`, `2d`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Generates object uids: uuid-shaped, unique per emulator, not predictable across runs.
#[derive(Debug)]
pub struct IdGen {
    state: u64,
}

impl IdGen {
    /// A generator seeded from the process's hash randomness and the clock.
    pub fn new() -> Self {
        use std::hash::{BuildHasher, RandomState};
        let seed = RandomState::new().hash_one(jiff::Timestamp::now().as_nanosecond());
        IdGen { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A fresh uid in the 8-4-4-4-12 form (version 4 layout).
    pub fn uid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }

    /// Five random characters for `generateName`, from the real server's alphabet.
    pub fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.next_u64();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
                n /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }
}

impl Default for IdGen {
    fn default() -> Self {
        Self::new()
    }
}

/// `metadata` as a mutable map, created when missing or not an object.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("made an object above");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("made an object above")
}

/// A string field of `metadata`, or "".
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The uids named in `metadata.ownerReferences`.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid")?.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the object carries a deletionTimestamp.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Checks a DNS-1123 subdomain (most names) or label (namespaces); returns the problem.
pub fn invalid_name(name: &str, label_only: bool) -> Option<String> {
    let max = if label_only { 63 } else { 253 };
    let ok_char = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && !label_only)
    };
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() {
        return Some("name or generateName is required".into());
    }
    if name.len() > max
        || !name.chars().all(ok_char)
        || !alnum(name.chars().next())
        || !alnum(name.chars().last())
    {
        // The real server's words (apimachinery's IsDNS1123Label / IsDNS1123Subdomain).
        let rule = if label_only && name.contains('.') {
            "must not contain dots".to_string()
        } else if label_only {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()
        } else {
            r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()
        };
        return Some(format!("Invalid value: {name:?}: {rule}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uids_are_uuid_shaped_and_distinct() {
        let mut g = IdGen::new();
        let (a, b) = (g.uid(), g.uid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }

    #[test]
    fn names_must_be_dns_subdomains_and_namespaces_dns_labels() {
        assert!(invalid_name("a.b-c", false).is_none());
        assert!(invalid_name("a.b", true).is_some());
        assert!(invalid_name("Upper", false).is_some());
        assert!(invalid_name("-x", false).is_some());
        assert!(invalid_name("", false).is_some());
    }

    #[test]
    fn timestamps_are_whole_seconds_in_utc() {
        let t = now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
        assert!(seconds_since(&t).is_some_and(|s| (0..5).contains(&s)));
    }

    #[test]
    fn metadata_helpers_tolerate_missing_fields() {
        let mut v = json!({"kind": "X"});
        assert_eq!(meta_str(&v, "name"), "");
        assert!(finalizers(&v).is_empty());
        meta_mut(&mut v).insert("name".into(), json!("n"));
        assert_eq!(meta_str(&v, "name"), "n");
        assert_eq!(human_duration(30), "30s");
        assert_eq!(human_duration(600), "10m");
    }
}
