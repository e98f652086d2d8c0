//! GitLab applications on GitLab.com or a self-managed GitLab CE/EE server.

use super::url::{base, host, parse_http};
use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

/// The web base and REST API base (`/api/v4`) of a GitLab server.
pub fn gitlab_endpoints(field: &str, server_url: &str) -> Result<(String, String), ProviderError> {
    let url = parse_http(field, server_url)?;
    let web = if host(&url) == "gitlab.com" {
        "https://gitlab.com".to_string()
    } else {
        base(&url, "/api/v4")
    };
    let api = format!("{web}/api/v4");
    Ok((web, api))
}

pub(super) struct GitlabProvider;

impl Provider for GitlabProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::Gitlab
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let gitlab = block(&spec.gitlab, "gitlab")?;
        let (web, api) = gitlab_endpoints("spec.gitlab.serverUrl", &gitlab.server_url)?;
        let edition = if web == "https://gitlab.com" {
            "GitLab.com"
        } else {
            "GitLab CE/EE"
        };
        Ok(Validated {
            summary: format!("{edition} application {} at {api}", gitlab.application_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_com_and_self_managed_servers_get_their_api_base() {
        assert_eq!(
            gitlab_endpoints("f", "https://gitlab.com/").unwrap().1,
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            gitlab_endpoints("f", "https://git.example.com/gitlab/api/v4").unwrap(),
            (
                "https://git.example.com/gitlab".into(),
                "https://git.example.com/gitlab/api/v4".into()
            )
        );
    }
}
