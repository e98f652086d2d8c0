//! Where a Connection's extra CA certificates are: a key of a ConfigMap or of a Secret.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::patterns;
use super::secret_ref::SecretKeyRef;

/// A key of a ConfigMap in the same namespace as the object that refers to it.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap, in the same namespace.
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub name: String,
    /// Key inside the ConfigMap's data.
    #[schemars(length(min = 1, max = 253), pattern(patterns::SECRET_KEY))]
    pub key: String,
}

/// PEM CA certificates that every call to the connection's servers trusts, besides the
/// system's roots and the operator's `--extra-ca-bundle`. Exactly one of `configMap` and
/// `secret`, in the connection's namespace.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMap) != has(self.secret)").message("exactly one of configMap and secret must be set"))]
pub struct CaBundleRef {
    /// A key of a ConfigMap holding the PEM certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapKeyRef>,
    /// A key of a Secret holding the PEM certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretKeyRef>,
}
