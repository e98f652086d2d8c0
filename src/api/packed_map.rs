//! A map of strings kept in memory as one string, its JSON text, for the maps every cached
//! object carries and patchbay rarely reads (a token's granted `permissions`).
//!
//! A `BTreeMap<String, String>` of two entries costs a B-tree node (about 540 bytes) and four
//! strings; ten thousand cached tokens held 5.7 MiB in those maps alone. Kept as its compact
//! JSON text (`{"contents":"write","metadata":"read"}`) it is one small allocation. On the wire
//! and in the schema it is the same JSON object of strings as before.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map from strings to strings, ordered by key, kept as its canonical JSON text.
///
/// Equal maps have equal text (keys sorted, one escaping), so comparing two is comparing text.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PackedMap(Option<Box<str>>);

impl PackedMap {
    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// The entries, as a map of their own.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        // The text was written by `From<BTreeMap>` below: it always parses.
        (self.0.as_deref())
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    /// The value of `key`, if the map has it.
    pub fn get(&self, key: &str) -> Option<String> {
        self.to_map().remove(key)
    }
}

impl From<BTreeMap<String, String>> for PackedMap {
    fn from(map: BTreeMap<String, String>) -> Self {
        if map.is_empty() {
            return Self(None);
        }
        // A map of strings always serializes.
        let text = serde_json::to_string(&map).unwrap_or_default();
        Self(Some(text.into_boxed_str()))
    }
}

#[cfg(test)]
impl<const N: usize> From<[(&str, &str); N]> for PackedMap {
    fn from(pairs: [(&str, &str); N]) -> Self {
        let map = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Self::from(map.collect::<BTreeMap<_, _>>())
    }
}

impl fmt::Debug for PackedMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_map().fmt(f)
    }
}

impl Serialize for PackedMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PackedMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_reads_back_as_it_was_written_whatever_its_strings_hold() {
        let map: BTreeMap<String, String> = [
            ("contents", "write"),
            ("quote\"and\\slash", "nul\u{0}and\nnewline"),
            ("ünïcode", "✓"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let packed = PackedMap::from(map.clone());
        assert_eq!(packed.to_map(), map);
        assert_eq!(packed.get("contents").as_deref(), Some("write"));
        assert_eq!(packed.get("absent"), None);
        let json = serde_json::to_value(&packed).unwrap();
        assert_eq!(
            serde_json::from_value::<BTreeMap<String, String>>(json.clone()).unwrap(),
            map
        );
        assert_eq!(serde_json::from_value::<PackedMap>(json).unwrap(), packed);
    }

    #[test]
    fn maps_with_the_same_entries_are_equal_whatever_order_they_came_in() {
        let a: PackedMap = serde_json::from_str(r#"{"b":"2","a":"1"}"#).unwrap();
        let b: PackedMap = serde_json::from_str(r#"{"a":"1","b":"2"}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, PackedMap::from([("a", "1")]));
    }

    #[test]
    fn an_empty_map_is_empty_and_equal_to_a_cleared_one() {
        let empty: PackedMap = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
        let mut cleared = PackedMap::from([("a", "1")]);
        assert!(!cleared.is_empty());
        cleared.clear();
        assert_eq!(cleared, empty);
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
    }

    #[test]
    fn anything_but_an_object_of_strings_is_refused() {
        for bad in [r#"{"a":1}"#, r#"["a"]"#, r#""a""#, r#"{"a":{"b":"c"}}"#] {
            assert!(serde_json::from_str::<PackedMap>(bad).is_err(), "{bad}");
        }
    }
}
