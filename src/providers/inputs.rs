//! What providers read and write through the controller: Secret values it read for them, the
//! Secrets they ask it to read, and the values they ask it to write back.

use std::collections::BTreeMap;
use std::fmt;

use crate::api::SecretKeyRef;
use crate::conditions::reasons;

use super::ProviderError;

/// A Secret the controller must read for a provider.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRead {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
}

impl SecretRead {
    /// Secret `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// One Secret value a provider asks the controller to write, e.g. a rotated key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretWrite {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// The data key.
    pub key: String,
    /// The new value; empty removes the key.
    pub value: Vec<u8>,
    /// When set, the write happens only while the key still holds this value (the value the
    /// provider was given): a change made since, say a new grant a person stored, wins.
    pub replaces: Option<Vec<u8>>,
}

impl fmt::Debug for SecretWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretWrite")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("key", &self.key)
            .field("value", &"<redacted>")
            .field("replaces", &self.replaces.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Secret data the controller read, by namespace and Secret name. A Secret that does not exist
/// is absent. References without a namespace resolve in the home namespace (the Connection's).
/// Messages call the namespace of the object whose status shows them "this namespace" and name
/// any other.
#[derive(Clone, Default)]
pub struct SecretValues {
    home: String,
    here: String,
    secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValues")
            .field("home", &self.home)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SecretValues {
    /// No values yet, for a Connection in `home`: references resolve there.
    pub fn new(home: impl Into<String>) -> Self {
        let home = home.into();
        Self {
            here: home.clone(),
            home,
            secrets: BTreeMap::new(),
        }
    }

    /// No values yet, for an object in `here` (a token) using a Connection in `home`.
    pub fn seen_from(home: impl Into<String>, here: impl Into<String>) -> Self {
        Self {
            home: home.into(),
            here: here.into(),
            secrets: BTreeMap::new(),
        }
    }

    /// The namespace references resolve in by default.
    pub fn home(&self) -> &str {
        &self.home
    }

    /// Records the data of Secret `name` in the home namespace.
    pub fn insert(&mut self, name: impl Into<String>, data: BTreeMap<String, Vec<u8>>) {
        let home = self.home.clone();
        self.insert_in(home, name, data);
    }

    /// Records the data of Secret `name` in `namespace`.
    pub fn insert_in(
        &mut self,
        namespace: impl Into<String>,
        name: impl Into<String>,
        data: BTreeMap<String, Vec<u8>>,
    ) {
        self.secrets.insert((namespace.into(), name.into()), data);
    }

    /// Applies `write` to the values as read, as the controller has just stored it (an empty
    /// value removes the key), so that the provider sees what is now in the Secret.
    pub fn apply(&mut self, write: &SecretWrite) {
        let key = (write.namespace.clone(), write.name.clone());
        let data = self.secrets.entry(key).or_default();
        match write.value.is_empty() {
            true => data.remove(&write.key),
            false => data.insert(write.key.clone(), write.value.clone()),
        };
    }

    /// Whether Secret `name` in `namespace` was read and exists.
    pub fn has(&self, namespace: &str, name: &str) -> bool {
        self.secrets
            .contains_key(&(namespace.to_string(), name.to_string()))
    }

    /// The bytes behind a reference in the home namespace, or why they are not there.
    pub fn get(&self, field: &str, r: &SecretKeyRef) -> Result<&[u8], ProviderError> {
        self.get_in(field, &self.home, r)
    }

    /// The bytes behind a reference in `namespace`, or why they are not there, naming `field`.
    pub fn get_in(
        &self,
        field: &str,
        namespace: &str,
        r: &SecretKeyRef,
    ) -> Result<&[u8], ProviderError> {
        let key = (namespace.to_string(), r.name.clone());
        let data = self.secrets.get(&key).ok_or_else(|| {
            let place = if namespace == self.here {
                "this namespace".to_string()
            } else {
                namespace.to_string()
            };
            ProviderError::config(
                reasons::SECRET_NOT_FOUND,
                format!("{field}: Secret {:?} does not exist in {place}", r.name),
            )
        })?;
        data.get(&r.key).map(Vec::as_slice).ok_or_else(|| {
            ProviderError::config(
                reasons::SECRET_KEY_NOT_FOUND,
                format!("{field}: Secret {:?} has no key {:?}", r.name, r.key),
            )
        })
    }

    /// Like [`get`](Self::get), for a value that must be UTF-8 text.
    pub fn text(&self, field: &str, r: &SecretKeyRef) -> Result<&str, ProviderError> {
        self.text_in(field, &self.home, r)
    }

    /// Like [`get_in`](Self::get_in), for a value that must be UTF-8 text.
    pub fn text_in(
        &self,
        field: &str,
        namespace: &str,
        r: &SecretKeyRef,
    ) -> Result<&str, ProviderError> {
        std::str::from_utf8(self.get_in(field, namespace, r)?).map_err(|_| {
            ProviderError::config(
                reasons::INVALID_SECRET_VALUE,
                format!(
                    "{field}: Secret {:?} key {:?} is not UTF-8 text",
                    r.name, r.key
                ),
            )
        })
    }
}
