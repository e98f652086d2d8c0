//! Azure DevOps personal access tokens, for Azure DevOps Services and Azure DevOps Server (TFS).
//! (OAuth applications are `azure_devops_oauth`.)
//!
//! A personal access token is projected as git basic auth for the organization (or collection)
//! URL and as `AZURE_DEVOPS_EXT_PAT` for the `az devops` CLI. It is long-lived (Azure DevOps
//! has no API that mints a narrower PAT from a PAT): copied only where the connection allows.
//! The live check is `_apis/connectionData`, asked not to redirect to a sign-in page.

use async_trait::async_trait;
use reqwest::StatusCode;

use super::http::{self, AUTHENTICATION_FAILED};
use super::url::{base, host, parse_http};
use super::{
    Env, Minted, Plan, Provider, ProviderError, Request, SecretValues, Services, Validated,
    Verification, block,
};
use crate::api::token::SecretFormat;
use crate::api::{Connection, ConnectionKind, ConnectionSpec};
use crate::output::Credential;

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

impl AzureDevOpsServer {
    /// The organization or collection URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Services { organization_url } => organization_url,
            Self::Server { collection_url } => collection_url,
        }
    }
}

/// The PAT connection's server and token.
fn pat<'a>(
    conn: &Connection,
    secrets: &'a SecretValues,
) -> Result<(AzureDevOpsServer, &'a str), ProviderError> {
    let pat = block(&conn.spec.azure_devops_pat, "azureDevOpsPat")?;
    let server = azure_devops_server("spec.azureDevOpsPat.serverUrl", &pat.server_url)?;
    let field = "spec.azureDevOpsPat.personalAccessToken";
    Ok((
        server,
        secrets.text(field, &pat.personal_access_token)?.trim(),
    ))
}

/// The live check: who Azure DevOps says the token belongs to.
async fn check(
    conn: &Connection,
    env: &Env<'_>,
    secrets: &SecretValues,
) -> Result<String, ProviderError> {
    let (server, token) = pat(conn, secrets)?;
    let url = server.url();
    let what = format!("{url}/_apis/connectionData");
    let request = (http::client(env.ca_bundle)?.get(format!("{what}?api-version=7.1-preview")))
        // Without it, a refused token gets a 203 sign-in page instead of a 401.
        .header("X-TFS-FedAuthRedirect", "Suppress")
        .basic_auth("", Some(token));
    let answer = http::send(request, url).await?;
    let refused = ProviderError::transient(
        AUTHENTICATION_FAILED,
        format!(
            "{url} does not accept the personal access token (HTTP {}): it expired, was \
             revoked, or belongs to another organization; put a valid one in \
             spec.azureDevOpsPat.personalAccessToken",
            answer.status.as_u16()
        ),
    );
    match answer.status {
        StatusCode::OK => {
            let body = answer.json();
            let user = &body["authenticatedUser"];
            let name = [&user["providerDisplayName"], &user["customDisplayName"]]
                .into_iter()
                .find_map(|v| v.as_str())
                .ok_or(refused)?;
            let name = http::printable(name, 100);
            Ok(format!("{url} accepted the token of {name:?}"))
        }
        StatusCode::NON_AUTHORITATIVE_INFORMATION
        | StatusCode::FOUND
        | StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN => Err(refused),
        _ => Err(answer.unexpected(&what)),
    }
}

pub(super) struct AzureDevOpsPatProvider;

#[async_trait]
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

    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        let what = "Azure DevOps personal access token";
        Plan::copied(request, what, SecretFormat::BasicAuth)
    }

    async fn verify(
        &self,
        conn: &Connection,
        env: &Env<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Verification {
        check(conn, env, secrets).await.into()
    }

    async fn mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Result<Minted, ProviderError> {
        let (server, token) = pat(request.connection, secrets)?;
        Ok(Minted::credential(Credential::AzureDevOpsPat {
            token: token.to_string(),
            server_url: server.url().to_string(),
        }))
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
