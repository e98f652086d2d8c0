//! GitHub OAuth applications on github.com or GitHub Enterprise Server.

use super::github_app::github_endpoints;
use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

pub(super) struct GithubOAuthProvider;

impl Provider for GithubOAuthProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::GithubOAuth
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let oauth = block(&spec.github_oauth, "githubOAuth")?;
        let endpoints = github_endpoints("spec.githubOAuth.serverUrl", &oauth.server_url)?;
        Ok(Validated {
            summary: format!("GitHub OAuth app {} at {}", oauth.client_id, endpoints.web),
        })
    }
}
