//! Azure DevOps OAuth applications and personal access tokens, for Azure DevOps Services and
//! Azure DevOps Server (TFS).

use super::url::{base, host, parse_http};
use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

/// Where an Azure DevOps server URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AzureDevOpsServer {
    /// Azure DevOps Services: the organization URL `https://dev.azure.com/{org}`.
    Services {
        /// The organization's URL.
        organization_url: String,
    },
    /// Azure DevOps Server (on-premises): the collection URL as given, without trailing `/`.
    Server {
        /// The collection URL.
        collection_url: String,
    },
}

/// Normalises `https://{account}.visualstudio.com`, `https://dev.azure.com/{org}` and
/// on-premises `https://{server}:8080/tfs/...` URLs.
pub fn azure_devops_server(field: &str, raw: &str) -> Result<AzureDevOpsServer, ProviderError> {
    let url = parse_http(field, raw)?;
    let host = host(&url);
    if let Some(account) = host.strip_suffix(".visualstudio.com") {
        return Ok(AzureDevOpsServer::Services {
            organization_url: format!("https://dev.azure.com/{account}"),
        });
    }
    if host == "dev.azure.com" {
        let org = url
            .path_segments()
            .and_then(|mut s| s.next())
            .unwrap_or_default();
        if org.is_empty() {
            return Err(ProviderError::config(
                "InvalidServerUrl",
                format!("{field}: {raw:?} needs the organization, e.g. https://dev.azure.com/acme"),
            ));
        }
        return Ok(AzureDevOpsServer::Services {
            organization_url: format!("https://dev.azure.com/{org}"),
        });
    }
    Ok(AzureDevOpsServer::Server {
        collection_url: base(&url, ""),
    })
}

pub(super) struct AzureDevOpsPatProvider;

impl Provider for AzureDevOpsPatProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::AzureDevOpsPat
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let pat = block(&spec.azure_devops_pat, "azureDevOpsPat")?;
        let summary = match azure_devops_server("spec.azureDevOpsPat.serverUrl", &pat.server_url)? {
            AzureDevOpsServer::Services { organization_url } => {
                format!("Azure DevOps Services organization {organization_url}")
            }
            AzureDevOpsServer::Server { collection_url } => {
                format!("Azure DevOps Server at {collection_url}")
            }
        };
        Ok(Validated { summary })
    }
}

pub(super) struct AzureDevOpsOAuthProvider;

impl Provider for AzureDevOpsOAuthProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::AzureDevOpsOAuth
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let oauth = block(&spec.azure_devops_oauth, "azureDevOpsOAuth")?;
        let url = parse_http("spec.azureDevOpsOAuth.serverUrl", &oauth.server_url)?;
        Ok(Validated {
            summary: format!(
                "Azure DevOps OAuth app {} at {} (scope {})",
                oauth.application_id,
                base(&url, ""),
                oauth.scope
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(org: &str) -> AzureDevOpsServer {
        AzureDevOpsServer::Services {
            organization_url: format!("https://dev.azure.com/{org}"),
        }
    }

    #[test]
    fn visualstudio_accounts_become_dev_azure_organizations() {
        assert_eq!(
            azure_devops_server("f", "https://acme.visualstudio.com/").unwrap(),
            services("acme")
        );
        assert_eq!(
            azure_devops_server("f", "https://dev.azure.com/acme/").unwrap(),
            services("acme")
        );
    }

    #[test]
    fn dev_azure_without_an_organization_is_refused() {
        let err = azure_devops_server("spec.azureDevOpsPat.serverUrl", "https://dev.azure.com")
            .unwrap_err();
        assert_eq!(err.reason, "InvalidServerUrl");
        assert!(err.message.contains("needs the organization"));
    }

    #[test]
    fn other_hosts_are_on_premises_collections() {
        assert_eq!(
            azure_devops_server("f", "https://tfs.example.com:8080/tfs/").unwrap(),
            AzureDevOpsServer::Server {
                collection_url: "https://tfs.example.com:8080/tfs".into()
            }
        );
    }
}
