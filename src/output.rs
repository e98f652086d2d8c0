//! The output Secret: how a minted credential is laid out in each format, the metadata patchbay
//! stamps on it, and whether an existing Secret of that name is patchbay's to overwrite. Pure.
//!
//! A Secret is patchbay's only when it is labelled `app.kubernetes.io/managed-by: patchbay` and
//! `patchbay.dev/token: <token name>`, and is tied to the token's UID, through a controller
//! ownerReference or, with `deletionPolicy: Retain`, the `patchbay.dev/owner-uid` annotation.
//! Any other Secret of that name is never touched.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::api::VcsAuthToken;
use crate::api::token::{DeletionPolicy, SecretFormat};

/// The label every patchbay Secret carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "patchbay");
/// The label naming the VcsAuthToken a Secret belongs to.
pub const TOKEN_LABEL: &str = "patchbay.dev/token";

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

const REDACTED: &str = "<redacted>";

/// A minted credential, as providers return it. `Debug` redacts the secret fields.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A GitHub installation token.
    GithubToken {
        /// The token (`ghs_...`).
        token: String,
        /// When GitHub expires it.
        expires_at: Timestamp,
        /// Host for `.git-credentials`, e.g. `github.com` or `ghe.example.com`.
        server_host: String,
    },
    /// AWS credentials.
    Aws {
        /// Access key ID (an identifier, not a secret).
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
        /// Session token of temporary credentials.
        session_token: Option<String>,
        /// Region the credentials are for.
        region: String,
        /// When temporary credentials expire; `None` for long-lived static keys.
        expires_at: Option<Timestamp>,
    },
    /// A docker registry login.
    DockerLogin {
        /// Registry host, the `auths` key (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
        registry: String,
        /// User name.
        username: String,
        /// Password.
        password: String,
        /// When the password expires; `None` when it does not.
        expires_at: Option<Timestamp>,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GithubToken {
                expires_at,
                server_host,
                ..
            } => f
                .debug_struct("GithubToken")
                .field("token", &REDACTED)
                .field("expires_at", expires_at)
                .field("server_host", server_host)
                .finish(),
            Self::Aws {
                access_key_id,
                session_token,
                region,
                expires_at,
                ..
            } => f
                .debug_struct("Aws")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &REDACTED)
                .field("session_token", &session_token.as_ref().map(|_| REDACTED))
                .field("region", region)
                .field("expires_at", expires_at)
                .finish(),
            Self::DockerLogin {
                registry,
                username,
                expires_at,
                ..
            } => f
                .debug_struct("DockerLogin")
                .field("registry", registry)
                .field("username", username)
                .field("password", &REDACTED)
                .field("expires_at", expires_at)
                .finish(),
        }
    }
}

impl Credential {
    /// When the credential expires; `None` for credentials that do not.
    pub fn expires_at(&self) -> Option<Timestamp> {
        match self {
            Self::GithubToken { expires_at, .. } => Some(*expires_at),
            Self::Aws { expires_at, .. } | Self::DockerLogin { expires_at, .. } => *expires_at,
        }
    }

    /// `sha256:` and the first 16 hex digits of the SHA-256 of the secret part (the GitHub
    /// token, the AWS secret access key, the registry password): `status.tokenId`. Lets a user
    /// match a Secret to the status (`printf %s "$TOKEN" | sha256sum`) without revealing it.
    pub fn fingerprint(&self) -> String {
        let secret = match self {
            Self::GithubToken { token, .. } => token,
            Self::Aws {
                secret_access_key, ..
            } => secret_access_key,
            Self::DockerLogin { password, .. } => password,
        };
        let digest = hex::encode(Sha256::digest(secret.as_bytes()));
        format!("sha256:{}", &digest[..16])
    }

    /// The format used when `spec.secret.format` is not set.
    pub fn default_format(&self) -> SecretFormat {
        match self {
            Self::GithubToken { .. } => SecretFormat::BasicAuth,
            Self::Aws { .. } => SecretFormat::AwsCredentials,
            Self::DockerLogin { .. } => SecretFormat::DockerConfigJson,
        }
    }

    /// What the credential is called in messages, and the formats that can hold it.
    fn kind_and_formats(&self) -> (&'static str, &'static [SecretFormat]) {
        use SecretFormat::*;
        match self {
            Self::GithubToken { .. } => ("GitHub token", &[BasicAuth, GitCredentials, Opaque]),
            Self::Aws { .. } => ("AWS", &[AwsCredentials, Opaque]),
            Self::DockerLogin { .. } => ("docker login", &[DockerConfigJson]),
        }
    }
}

/// The name of a format as `spec.secret.format` spells it.
pub fn format_name(format: SecretFormat) -> String {
    let name = serde_json::to_value(format).ok();
    name.and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The Secret `type` a format writes.
pub fn secret_type(format: SecretFormat) -> &'static str {
    match format {
        SecretFormat::BasicAuth => "kubernetes.io/basic-auth",
        SecretFormat::DockerConfigJson => "kubernetes.io/dockerconfigjson",
        _ => "Opaque",
    }
}

/// A format that cannot hold the credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.secret.format: {} cannot hold a {credential} credential; use {}", format_name(*format),
    allowed.iter().map(|f| format_name(*f)).collect::<Vec<_>>().join(" or "))]
pub struct FormatError {
    /// The format asked for.
    pub format: SecretFormat,
    /// The kind of credential minted.
    pub credential: &'static str,
    /// The formats that fit it.
    pub allowed: &'static [SecretFormat],
}

impl FormatError {
    /// The condition reason this error reports as.
    pub fn reason(&self) -> &'static str {
        "InvalidSecretFormat"
    }
}

/// A credential laid out as Secret data. `Debug` shows the keys only.
#[derive(Clone, PartialEq)]
pub struct Rendered {
    /// The Secret `type`.
    pub type_: String,
    /// The Secret data.
    pub data: BTreeMap<String, ByteString>,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("type_", &self.type_)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Lays `credential` out in `format`, or says why the format does not fit it.
pub fn render(credential: &Credential, format: SecretFormat) -> Result<Rendered, FormatError> {
    let (kind, allowed) = credential.kind_and_formats();
    if !allowed.contains(&format) {
        let credential = kind;
        return Err(FormatError {
            format,
            credential,
            allowed,
        });
    }
    let mut data = BTreeMap::new();
    let mut put = |key: &str, value: &str| {
        data.insert(key.to_owned(), ByteString(value.as_bytes().to_vec()));
    };
    match credential {
        Credential::GithubToken {
            token,
            expires_at,
            server_host,
        } => {
            put("token", token);
            put("expires_at", &expires_at.to_string());
            match format {
                SecretFormat::BasicAuth => {
                    put("username", "x-access-token");
                    put("password", token);
                }
                SecretFormat::GitCredentials => {
                    let line = format!("https://x-access-token:{token}@{server_host}\n");
                    put(".git-credentials", &line);
                }
                _ => {}
            }
        }
        Credential::Aws {
            access_key_id,
            secret_access_key,
            session_token,
            region,
            expires_at,
        } => {
            put("AWS_ACCESS_KEY_ID", access_key_id);
            put("AWS_SECRET_ACCESS_KEY", secret_access_key);
            put("AWS_REGION", region);
            let mut ini = format!(
                "[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret_access_key}\n"
            );
            if let Some(session_token) = session_token {
                put("AWS_SESSION_TOKEN", session_token);
                ini.push_str(&format!("aws_session_token = {session_token}\n"));
            }
            ini.push_str(&format!("region = {region}\n"));
            put("credentials", &ini);
            if let Some(expires_at) = expires_at {
                put("expiration", &expires_at.to_string());
            }
        }
        Credential::DockerLogin {
            registry,
            username,
            password,
            ..
        } => {
            let auth = base64(format!("{username}:{password}").as_bytes());
            let config = serde_json::json!({"auths": {registry: {
                "username": username, "password": password, "auth": auth,
            }}});
            put(".dockerconfigjson", &config.to_string());
        }
    }
    Ok(Rendered {
        type_: secret_type(format).to_owned(),
        data,
    })
}

/// Standard base64 (RFC 4648, with padding), for the dockerconfigjson `auth` field.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (chunk.iter().enumerate()).fold(0, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i) & 0x3f) as usize;
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[sextet])
            } else {
                '='
            });
        }
    }
    out
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

/// Whether `existing` may be overwritten for `token`: see the module documentation.
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
/// format always writes, non-empty (for `opaque`, either the GitHub or the AWS keys).
pub fn has_credential(secret: &Secret, format: SecretFormat) -> bool {
    const GITHUB: &[&str] = &["token", "expires_at"];
    const AWS: &[&str] = &[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "credentials",
    ];
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
            SecretFormat::BasicAuth => has(GITHUB) && has(&["username", "password"]),
            SecretFormat::GitCredentials => has(GITHUB) && has(&[".git-credentials"]),
            SecretFormat::Opaque => has(GITHUB) || has(AWS),
            SecretFormat::AwsCredentials => has(AWS),
            SecretFormat::DockerConfigJson => has(&[".dockerconfigjson"]),
            SecretFormat::Npmrc => has(&[".npmrc"]),
        }
}

#[cfg(test)]
mod tests;
