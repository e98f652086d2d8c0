//! One module per external service, behind one trait: the kind-specific parts of checking a
//! Connection (and, as each provider gains them, of verifying it live and minting from it).
//!
//! The controller reads the Secrets a Connection references (`ConnectionSpec::secret_refs`) and
//! hands their values in; providers never talk to the Kubernetes API themselves.

mod aws;
mod azure_devops;
mod bitbucket;
mod docker_registry;
pub mod github_app;
mod github_oauth;
mod gitlab;
mod google;
mod jetbrains_space;
mod npm_registry;
mod perforce_admin;
mod slack;
pub mod sts;
pub mod url;

pub use aws::{AwsCheck, MAX_ROLE_CHAIN, check_aws_credentials, external_id, sts_endpoint};
pub use docker_registry::registry_key;
pub use github_app::{GithubEndpoints, github_endpoints};

use std::collections::BTreeMap;

use crate::api::{ConnectionKind, ConnectionSpec, SecretKeyRef};

/// Secret data the controller read, by Secret name and key. A Secret that does not exist is
/// absent from the map.
#[derive(Clone, Debug, Default)]
pub struct SecretValues {
    secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl SecretValues {
    /// Records the data of Secret `name`.
    pub fn insert(&mut self, name: impl Into<String>, data: BTreeMap<String, Vec<u8>>) {
        self.secrets.insert(name.into(), data);
    }

    /// The bytes behind a reference, or why they are not there, naming `field`.
    pub fn get(&self, field: &str, r: &SecretKeyRef) -> Result<&[u8], ConfigError> {
        let data = self.secrets.get(&r.name).ok_or_else(|| {
            ConfigError::new(
                "SecretNotFound",
                format!(
                    "{field}: Secret {:?} does not exist in this namespace",
                    r.name
                ),
            )
        })?;
        data.get(&r.key).map(Vec::as_slice).ok_or_else(|| {
            ConfigError::new(
                "SecretKeyNotFound",
                format!("{field}: Secret {:?} has no key {:?}", r.name, r.key),
            )
        })
    }

    /// Like [`get`](Self::get), for a value that must be UTF-8 text.
    pub fn text(&self, field: &str, r: &SecretKeyRef) -> Result<&str, ConfigError> {
        std::str::from_utf8(self.get(field, r)?).map_err(|_| {
            ConfigError::new(
                "InvalidSecretValue",
                format!(
                    "{field}: Secret {:?} key {:?} is not UTF-8 text",
                    r.name, r.key
                ),
            )
        })
    }
}

/// A configuration problem that needs the user to act: a status reason and a message that names
/// the field. Never carries secret material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// CamelCase condition reason, e.g. `SecretNotFound`.
    pub reason: &'static str,
    /// Human-readable message naming the field.
    pub message: String,
}

impl ConfigError {
    /// A problem with `reason`, described by `message`.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// What a provider reports about a valid connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    /// One line for the Ready condition's message, e.g. `GitHub App 123456 at https://api.github.com`.
    pub summary: String,
}

/// The block of kind `field` in a spec, or an `InvalidSpec` error when it is not set.
pub(crate) fn block<'a, T>(value: &'a Option<T>, field: &str) -> Result<&'a T, ConfigError> {
    value
        .as_ref()
        .ok_or_else(|| ConfigError::new("InvalidSpec", format!("spec.{field} is not set")))
}

/// The kind-specific checks of one connection kind.
pub trait Provider: Send + Sync {
    /// The kind this provider serves.
    fn kind(&self) -> ConnectionKind;

    /// Checks what needs the cluster (Secret values, URL normalisation, key parsing). Every
    /// referenced Secret key has been found present before this is called.
    fn validate(
        &self,
        spec: &ConnectionSpec,
        secrets: &SecretValues,
    ) -> Result<Validated, ConfigError>;
}

/// The provider of a connection kind.
pub fn for_kind(kind: ConnectionKind) -> &'static dyn Provider {
    match kind {
        ConnectionKind::GithubApp => &github_app::GithubAppProvider,
        ConnectionKind::GithubOAuth => &github_oauth::GithubOAuthProvider,
        ConnectionKind::Gitlab => &gitlab::GitlabProvider,
        ConnectionKind::BitbucketCloud => &bitbucket::BitbucketCloudProvider,
        ConnectionKind::BitbucketServer => &bitbucket::BitbucketServerProvider,
        ConnectionKind::AzureDevOpsOAuth => &azure_devops::AzureDevOpsOAuthProvider,
        ConnectionKind::AzureDevOpsPat => &azure_devops::AzureDevOpsPatProvider,
        ConnectionKind::Google => &google::GoogleProvider,
        ConnectionKind::DockerRegistry => &docker_registry::DockerRegistryProvider,
        ConnectionKind::Aws => &aws::AwsProvider,
        ConnectionKind::Ecr => &aws::EcrProvider,
        ConnectionKind::Slack => &slack::SlackProvider,
        ConnectionKind::JetbrainsSpace => &jetbrains_space::JetbrainsSpaceProvider,
        ConnectionKind::NpmRegistry => &npm_registry::NpmRegistryProvider,
        ConnectionKind::PerforceAdmin => &perforce_admin::PerforceAdminProvider,
    }
}

/// Checks that every Secret reference of `spec` resolves, then runs the kind's own checks.
pub fn validate(spec: &ConnectionSpec, secrets: &SecretValues) -> Result<Validated, ConfigError> {
    let kind = spec.kind().ok_or_else(|| {
        ConfigError::new(
            "InvalidSpec",
            format!(
                "spec: exactly one provider block must be set, found {}",
                match spec.kinds().as_slice() {
                    [] => "none".to_string(),
                    kinds => kinds
                        .iter()
                        .map(|k| k.field_name())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            ),
        )
    })?;
    for used in spec.secret_refs() {
        secrets.get(&used.field, used.reference)?;
    }
    for_kind(kind).validate(spec, secrets)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Fixtures for provider tests.
    use super::*;

    /// A spec from JSON.
    pub fn spec(value: serde_json::Value) -> ConnectionSpec {
        serde_json::from_value(value).expect("spec deserialises")
    }

    /// Secret values from `(secret, key, value)` triples.
    pub fn secrets(entries: &[(&str, &str, &str)]) -> SecretValues {
        let mut values = SecretValues::default();
        let mut by_name: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        for (name, key, value) in entries {
            by_name
                .entry(name.to_string())
                .or_default()
                .insert(key.to_string(), value.as_bytes().to_vec());
        }
        for (name, data) in by_name {
            values.insert(name, data);
        }
        values
    }
}
