//! References to a key of a Secret in the referring object's own namespace.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::patterns;

/// A key of a Secret in the same namespace as the object that refers to it.
///
/// patchbay never follows a reference into another namespace: a Connection's credentials are
/// read from the Connection's namespace, a token's user inputs from the token's namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace.
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), pattern(patterns::SECRET_KEY))]
    pub key: String,
}

impl SecretKeyRef {
    /// A reference to `key` of Secret `name`.
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            key: key.into(),
        }
    }
}

impl std::fmt::Display for SecretKeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret {:?} key {:?}", self.name, self.key)
    }
}
