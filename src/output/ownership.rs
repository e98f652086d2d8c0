//! Whether an existing Secret of the output's name is patchbay's to overwrite, and what such a
//! Secret holds: its annotations, and whether it carries a whole credential in a format.

use k8s_openapi::api::core::v1::Secret;
use kube::{Resource, ResourceExt};

use super::render::secret_type;
use super::secret::{MANAGED_BY, TOKEN_LABEL, annotations};
use crate::api::VcsAuthToken;
use crate::api::token::SecretFormat;

/// Whether an existing Secret is patchbay's to write for a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// No Secret of that name exists.
    Absent,
    /// The Secret belongs to this token.
    Ours,
    /// The Secret is someone else's and must not be touched; why, for the condition message.
    Foreign(String),
}

/// Whether `secret` is one patchbay writes for a VcsAuthToken (it carries patchbay's
/// managed-by label or a token label), which nothing else may take over.
pub fn written_for_a_token(secret: &Secret) -> bool {
    let labels = secret.labels();
    labels.get(MANAGED_BY.0).is_some_and(|v| v == MANAGED_BY.1) || labels.contains_key(TOKEN_LABEL)
}

/// Whether `existing` may be overwritten for `token`: see the [`output`](super) module
/// documentation.
pub fn ownership(existing: Option<&Secret>, token: &VcsAuthToken) -> Ownership {
    let Some(secret) = existing else {
        return Ownership::Absent;
    };
    let uid = token.uid();
    let controller = secret
        .owner_references()
        .iter()
        .find(|r| r.controller == Some(true));
    if let Some(owner) = controller {
        let ours = owner.kind == VcsAuthToken::kind(&()) && Some(&owner.uid) == uid.as_ref();
        if !ours {
            return Ownership::Foreign(format!(
                "it is owned by {} {} (uid {})",
                owner.kind, owner.name, owner.uid
            ));
        }
    }
    let label = |key: &str| secret.labels().get(key).map(String::as_str);
    match label(MANAGED_BY.0) {
        Some(v) if v == MANAGED_BY.1 => {}
        Some(other) => {
            return Ownership::Foreign(format!("it is managed by {other}, not patchbay"));
        }
        None => return Ownership::Foreign("it is not managed by patchbay".into()),
    }
    let name = token.name_any();
    match label(TOKEN_LABEL) {
        Some(v) if v == name => {}
        Some(other) => {
            return Ownership::Foreign(format!("it belongs to VcsAuthToken {other}"));
        }
        None => return Ownership::Foreign(format!("it has no {TOKEN_LABEL} label")),
    }
    if controller.is_some() {
        return Ownership::Ours;
    }
    match read_annotation(secret, annotations::OWNER_UID) {
        Some(v) if uid.as_deref() == Some(v) => Ownership::Ours,
        Some(other) => Ownership::Foreign(format!(
            "it belongs to an earlier VcsAuthToken {name} (uid {other})"
        )),
        None => Ownership::Foreign(format!(
            "it has neither an ownerReference to this VcsAuthToken nor a {} annotation",
            annotations::OWNER_UID
        )),
    }
}

/// The value of annotation `key` on `secret`.
pub fn read_annotation<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    secret.annotations().get(key).map(String::as_str)
}

/// Whether `secret` holds a credential in `format`: it has the format's type and every key the
/// format always writes, non-empty (for `opaque`, the GitHub or AWS keys, or the one key of a
/// Slack, Azure DevOps or Perforce credential, or an OAuth access token and its expiry).
pub fn has_credential(secret: &Secret, format: SecretFormat) -> bool {
    const GITHUB: &[&str] = &["token", "expires_at"];
    const OAUTH: &[&str] = &["access_token", "expires_at"];
    const AWS: &[&str] = &[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "credentials",
    ];
    // Opaque layouts whose one key is the credential: Slack, Azure DevOps, Perforce.
    const OPAQUE_ALONE: &[&str] = &["SLACK_BOT_TOKEN", "AZURE_DEVOPS_EXT_PAT", "P4PASSWD"];
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    let data = secret.data.as_ref();
    let has = |keys: &[&str]| {
        keys.iter().all(|k| {
            data.and_then(|d| d.get(*k))
                .is_some_and(|v| !v.0.is_empty())
        })
    };
    type_ == secret_type(format)
        && match format {
            SecretFormat::BasicAuth => has(&["username", "password"]),
            SecretFormat::GitCredentials => has(&[".git-credentials"]),
            SecretFormat::Opaque => {
                has(GITHUB) || has(OAUTH) || has(AWS) || OPAQUE_ALONE.iter().any(|k| has(&[k]))
            }
            SecretFormat::AwsCredentials => has(AWS),
            SecretFormat::DockerConfigJson => has(&[".dockerconfigjson"]),
            SecretFormat::Npmrc => has(&[".npmrc"]),
        }
}
