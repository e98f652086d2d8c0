//! The output Secret around the rendered data: its name, the labels and annotations patchbay
//! stamps on it, and what ties it to its token (a controller ownerReference or, with
//! `deletionPolicy: Retain`, the owner-uid annotation).

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::render::Rendered;
use crate::api::VcsAuthToken;
use crate::api::token::DeletionPolicy;

/// The label every patchbay Secret carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "patchbay");
/// The label naming the VcsAuthToken a Secret belongs to.
pub const TOKEN_LABEL: &str = "patchbay.dev/token";

/// The Secret data key that keeps a superseded credential's secret until it is revoked.
pub const SUPERSEDED_KEY: &str = "superseded-token";

/// Annotations patchbay writes on its Secrets.
pub mod annotations {
    /// When the credential expires (RFC 3339).
    pub const EXPIRES_AT: &str = "patchbay.dev/expires-at";
    /// The Connection minted from, as `namespace/name`.
    pub const CONNECTION: &str = "patchbay.dev/connection";
    /// Hash of the effective request the credential was minted for.
    pub const REQUEST_HASH: &str = "patchbay.dev/request-hash";
    /// Hash of the connection's credentials at mint time.
    pub const CONNECTION_HASH: &str = "patchbay.dev/connection-hash";
    /// When the credential was issued (RFC 3339).
    pub const ISSUED_AT: &str = "patchbay.dev/issued-at";
    /// The token's `patchbay.dev/renew-requested-at` value this credential answered.
    pub const RENEW_REQUESTED_AT: &str = "patchbay.dev/renew-requested-at";
    /// The credential's fingerprint (`status.tokenId`).
    pub const TOKEN_ID: &str = "patchbay.dev/token-id";
    /// UID of the owning VcsAuthToken, on Secrets kept with `deletionPolicy: Retain`.
    pub const OWNER_UID: &str = "patchbay.dev/owner-uid";
}

/// Everything [`build_secret`] needs besides the rendered data.
pub struct SecretInputs<'a> {
    /// The token the Secret belongs to.
    pub token: &'a VcsAuthToken,
    /// The credential laid out in the token's format.
    pub rendered: Rendered,
    /// Where the Connection was found: `(namespace, name)`.
    pub connection: (&'a str, &'a str),
    /// Hash of the effective request.
    pub request_hash: &'a str,
    /// Hash of the connection's credentials.
    pub connection_hash: &'a str,
    /// When the credential was issued.
    pub issued_at: Timestamp,
    /// When it expires, if it does.
    pub expires_at: Option<Timestamp>,
    /// The token's `patchbay.dev/renew-requested-at` value this mint answered.
    pub renew_requested_at: Option<&'a str>,
    /// The credential's fingerprint.
    pub token_id: &'a str,
}

/// The Secret to apply for a token: its name, labels, annotations, ownership and data.
pub fn build_secret(inputs: SecretInputs<'_>) -> Secret {
    let token = inputs.token;
    let template = token.spec.secret.clone().unwrap_or_default();
    let mut labels = template.labels;
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    labels.insert(TOKEN_LABEL.into(), token.name_any());
    let mut notes = template.annotations;
    let (ns, name) = inputs.connection;
    let mut note = |key: &str, value: String| notes.insert(key.to_owned(), value);
    note(annotations::CONNECTION, format!("{ns}/{name}"));
    note(annotations::REQUEST_HASH, inputs.request_hash.into());
    note(annotations::CONNECTION_HASH, inputs.connection_hash.into());
    note(annotations::ISSUED_AT, inputs.issued_at.to_string());
    note(annotations::TOKEN_ID, inputs.token_id.into());
    if let Some(expires_at) = inputs.expires_at {
        note(annotations::EXPIRES_AT, expires_at.to_string());
    }
    if let Some(requested) = inputs.renew_requested_at {
        note(annotations::RENEW_REQUESTED_AT, requested.into());
    }
    let owner_references = match template.deletion_policy {
        DeletionPolicy::Delete => token.controller_owner_ref(&()).map(|owner| {
            let block_owner_deletion = Some(true);
            vec![OwnerReference {
                block_owner_deletion,
                ..owner
            }]
        }),
        DeletionPolicy::Retain => {
            note(annotations::OWNER_UID, token.uid().unwrap_or_default());
            None
        }
    };
    Secret {
        metadata: ObjectMeta {
            name: Some(template.name.unwrap_or_else(|| token.name_any())),
            namespace: token.namespace(),
            labels: Some(labels),
            annotations: Some(notes),
            owner_references,
            ..ObjectMeta::default()
        },
        type_: Some(inputs.rendered.type_),
        data: Some(inputs.rendered.data),
        ..Secret::default()
    }
}
