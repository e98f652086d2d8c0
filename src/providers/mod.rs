//! One module per external service, behind one trait: everything kind-specific about checking a
//! Connection, testing it live, and minting, revoking and rotating its credentials.
//!
//! Providers never call the Kubernetes API. The controller asks a provider what to read
//! ([`Provider::inputs`], [`Plan::reads`]), reads those Secrets into [`SecretValues`], calls the
//! provider, and writes what it returns ([`Minted`], [`RotatedKey`]). What a provider may see of
//! the cluster is [`Env`]: a read-only snapshot of the namespace tree and the Connection cache.
//!
//! [`for_kind`] is the registry: the only `match` over connection kinds. Adding a kind is one
//! module here and one arm there (see `docs/architecture.md`).

mod aws;
mod azure_devops;
mod azure_devops_oauth;
mod bitbucket;
mod docker_registry;
pub mod endpoints;
mod error;
pub mod github_app;
mod github_oauth;
mod gitlab;
mod google;
pub mod http;
mod inputs;
mod jetbrains_space;
pub mod network;
mod npm_registry;
pub mod oauth;
mod perforce_admin;
mod provider;
mod services;
mod slack;
pub mod sts;
pub mod url;

pub use aws::{MAX_ROLE_CHAIN, external_id, sts_endpoint};
pub use docker_registry::registry_key;
pub use endpoints::EndpointPolicy;
pub use error::{MAX_RETRY_AFTER, ProviderError, clamp_retry_after};
pub use github_app::{GithubEndpoints, github_endpoints};
pub use inputs::{SecretRead, SecretValues, SecretWrite};
pub use network::{CaBundle, Network};
pub use provider::{
    Env, Granted, Inputs, Lifetime, Minted, Plan, Provider, Request, Revoked, RotatedKey,
    SharedGrant, Stored, Validated, Verification, copy_allowed, identity,
};
pub use services::Services;

use crate::api::{ConnectionKind, ConnectionSpec};
use crate::conditions::reasons;

/// The provider of a connection kind: the registry, and the only `match` over kinds.
pub fn for_kind(kind: ConnectionKind) -> &'static dyn Provider {
    match kind {
        ConnectionKind::GithubApp => &github_app::GithubAppProvider,
        ConnectionKind::GithubOAuth => &github_oauth::GithubOAuthProvider,
        ConnectionKind::Gitlab => &gitlab::GitlabProvider,
        ConnectionKind::BitbucketCloud => &bitbucket::BitbucketCloudProvider,
        ConnectionKind::BitbucketServer => &bitbucket::BitbucketServerProvider,
        ConnectionKind::AzureDevOpsOAuth => &azure_devops_oauth::AzureDevOpsOAuthProvider,
        ConnectionKind::AzureDevOpsPat => &azure_devops::AzureDevOpsPatProvider,
        ConnectionKind::Google => &google::GoogleProvider,
        ConnectionKind::DockerRegistry => &docker_registry::DockerRegistryProvider,
        ConnectionKind::Aws => &aws::AWS,
        ConnectionKind::Ecr => &aws::ECR,
        ConnectionKind::Slack => &slack::SlackProvider,
        ConnectionKind::JetbrainsSpace => &jetbrains_space::JetbrainsSpaceProvider,
        ConnectionKind::NpmRegistry => &npm_registry::NpmRegistryProvider,
        ConnectionKind::PerforceAdmin => &perforce_admin::PerforceAdminProvider,
    }
}

/// The provider of a spec with exactly one kind block, or an `InvalidSpec` error naming what
/// was found.
pub fn for_spec(spec: &ConnectionSpec) -> Result<&'static dyn Provider, ProviderError> {
    let kind = spec.kind().ok_or_else(|| {
        ProviderError::config(
            reasons::INVALID_SPEC,
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
    Ok(for_kind(kind))
}

/// The block of kind `field` in a spec, or an `InvalidSpec` error when it is not set.
pub(crate) fn block<'a, T>(value: &'a Option<T>, field: &str) -> Result<&'a T, ProviderError> {
    value.as_ref().ok_or_else(|| {
        ProviderError::config(reasons::INVALID_SPEC, format!("spec.{field} is not set"))
    })
}

/// Checks that every Secret reference of `spec` resolves, then runs the kind's own checks.
pub fn validate(spec: &ConnectionSpec, secrets: &SecretValues) -> Result<Validated, ProviderError> {
    let provider = for_spec(spec)?;
    for used in spec.secret_refs() {
        secrets.get(&used.field, used.reference)?;
    }
    provider.validate(spec, secrets)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Fixtures for provider tests.
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::Connection;

    /// The namespace test connections live in.
    pub const NS: &str = "ci";

    /// A spec from JSON.
    pub fn spec(value: serde_json::Value) -> ConnectionSpec {
        serde_json::from_value(value).expect("spec deserialises")
    }

    /// Connection `name` in namespace `ns` with `spec`.
    pub fn connection(ns: &str, name: &str, spec: ConnectionSpec) -> Connection {
        let mut conn = Connection::new(name, spec);
        conn.metadata.namespace = Some(ns.to_string());
        conn
    }

    /// Secret values from `(secret, key, value)` triples.
    pub fn secrets(entries: &[(&str, &str, &str)]) -> SecretValues {
        let mut values = SecretValues::new(NS);
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

#[cfg(test)]
mod tests {
    use super::testing::{NS, connection, spec};
    use super::*;
    use crate::api::VcsAuthToken;
    use crate::hierarchy::Tree;

    #[test]
    fn the_registry_has_one_provider_per_kind() {
        for kind in ConnectionKind::ALL {
            assert_eq!(for_kind(kind).kind(), kind);
        }
    }

    #[test]
    fn a_kind_that_cannot_mint_yet_says_so_naming_the_connection() {
        let conn = connection(
            NS,
            "git",
            spec(serde_json::json!({"gitlab": {"applicationId": "a",
            "secret": {"name": "s", "key": "k"}}})),
        );
        let token: VcsAuthToken = serde_json::from_value(serde_json::json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "t", "namespace": NS},
            "spec": {"connection": "git", "oauth": {"refreshToken": {"name": "r", "key": "k"}}},
        }))
        .unwrap();
        let tree = Tree::new(NS);
        let env = Env {
            tree: &tree,
            connections: &[],
            allow_default_chain: false,
            endpoints: &EndpointPolicy::default(),
            ca_bundle: None,
        };
        let request = Request {
            token: &token,
            connection: &conn,
            env: &env,
        };
        /// A kind whose provider implements only the checks, as a new kind starts out.
        struct ValidatesOnly;
        impl Provider for ValidatesOnly {
            fn kind(&self) -> ConnectionKind {
                ConnectionKind::Gitlab
            }
            fn validate(
                &self,
                _: &ConnectionSpec,
                _: &SecretValues,
            ) -> Result<Validated, ProviderError> {
                Ok(Validated::default())
            }
        }
        let err = ValidatesOnly.plan(&request).unwrap_err();
        assert_eq!(err.reason, "MintingNotAvailable");
        assert!(!err.permanent, "not the user's mistake: no Stalled");
        assert_eq!(
            err.message,
            "resolved to Connection ci/git; this release does not mint gitlab credentials yet"
        );
    }

    #[test]
    fn only_the_provider_block_of_a_connection_shapes_its_credentials() {
        let app = |name: &str, app_id: &str| {
            let mut conn = connection(
                NS,
                "github",
                spec(
                    serde_json::json!({"displayName": name, "githubApp": {"appId": app_id,
                    "privateKey": {"name": "k", "key": "pem"}}}),
                ),
            );
            conn.metadata.uid = Some("uid-1".into());
            conn.metadata.generation = Some(app_id.len() as i64 + name.len() as i64);
            conn
        };
        let before = identity(&app("CI", "1"));
        assert_eq!(identity(&app("Renamed for the wiki", "1")), before);
        assert_ne!(identity(&app("CI", "2")), before);
    }
}
