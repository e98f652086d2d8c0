//! Azure DevOps applications through Microsoft Entra ID, with the OAuth engine
//! ([`super::oauth`]): tokens for the application's service principal (client credentials,
//! scope `499b84ac-1321-427f-aa17-267ca6975798/.default`, the Azure DevOps resource) or
//! refreshed from a user's grant, at `{authority}/{tenant}/oauth2/v2.0/token`. Entra ID rotates
//! refresh tokens on use but the one it replaces stays usable until it expires, and a refresh
//! leaves the access token it replaces valid. Azure Repos takes Entra tokens in a bearer header
//! (`git -c http.extraHeader="Authorization: Bearer ..."`), so they are written as `opaque` with
//! an `authorization` key.
//!
//! The legacy Azure DevOps OAuth server (`app.vssps.visualstudio.com`, JWT-bearer assertions)
//! takes no new applications and is being retired by Microsoft; patchbay does not mint through
//! it: a connection without `tenantId` is told to move to Entra ID.

use super::oauth::{App, ClientAuth, OAuthKind, Refresh};
use super::url::{base, parse_http};
use super::{ProviderError, Validated, block};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};
use crate::conditions::reasons;

/// The legacy Azure DevOps OAuth server, the block's default `serverUrl`.
const LEGACY_SERVER: &str = "https://app.vssps.visualstudio.com";
/// Microsoft Entra ID's global authority.
const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";

pub(super) struct AzureDevOpsOAuthProvider;

/// The Entra ID authority a block names: its `serverUrl`, or the global one when that is left
/// at the legacy default.
fn authority(server_url: &str) -> Result<String, ProviderError> {
    let url = base(
        &parse_http("spec.azureDevOpsOAuth.serverUrl", server_url)?,
        "",
    );
    Ok(if url == LEGACY_SERVER {
        ENTRA_AUTHORITY.into()
    } else {
        url
    })
}

impl OAuthKind for AzureDevOpsOAuthProvider {
    const KIND: ConnectionKind = ConnectionKind::AzureDevOpsOAuth;

    fn check(&self, spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
        let oauth = block(&spec.azure_devops_oauth, "azureDevOpsOAuth")?;
        let summary = match &oauth.tenant_id {
            Some(tenant) => format!(
                "Azure DevOps application {} in Entra ID tenant {tenant} at {} (scope {})",
                oauth.application_id,
                authority(&oauth.server_url)?,
                oauth.scope
            ),
            None => format!(
                "legacy Azure DevOps OAuth app {} (scope {}); set tenantId to mint through \
                 Microsoft Entra ID",
                oauth.application_id, oauth.scope
            ),
        };
        Ok(Validated { summary })
    }

    fn client_secret<'a>(
        &self,
        conn: &'a Connection,
    ) -> Result<(&'static str, &'a SecretKeyRef), ProviderError> {
        let oauth = block(&conn.spec.azure_devops_oauth, "azureDevOpsOAuth")?;
        Ok(("spec.azureDevOpsOAuth.clientSecret", &oauth.client_secret))
    }

    fn app<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Result<App<'a>, ProviderError> {
        let oauth = block(&conn.spec.azure_devops_oauth, "azureDevOpsOAuth")?;
        let Some(tenant) = &oauth.tenant_id else {
            return Err(ProviderError::config(
                reasons::INVALID_SPEC,
                "spec.azureDevOpsOAuth.tenantId: not set; the legacy Azure DevOps OAuth server \
                 is being retired and patchbay mints only through Microsoft Entra ID: register \
                 the application in Entra ID and set its tenant",
            ));
        };
        Ok(App {
            provider: "Microsoft Entra ID",
            token_url: format!(
                "{}/{tenant}/oauth2/v2.0/token",
                authority(&oauth.server_url)?
            ),
            client_id: &oauth.application_id,
            client_secret,
            auth: ClientAuth::Form,
            refresh: Refresh {
                single_use: false,
                revokes_access_token: None,
            },
            client_credentials: true,
            username: None,
            git_url: "https://dev.azure.com".into(),
            extra: Vec::new(),
            default_scope: Some(&oauth.scope),
            variable: None,
        })
    }

    fn device_authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        let app = self.app(conn, "")?;
        Ok(Some(
            app.token_url
                .replace("/oauth2/v2.0/token", "/oauth2/v2.0/devicecode"),
        ))
    }

    fn authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        let app = self.app(conn, "")?;
        Ok(Some(
            app.token_url
                .replace("/oauth2/v2.0/token", "/oauth2/v2.0/authorize"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_default_server_means_the_global_entra_authority() {
        assert_eq!(authority(LEGACY_SERVER).unwrap(), ENTRA_AUTHORITY);
        assert_eq!(
            authority("https://login.microsoftonline.us/").unwrap(),
            "https://login.microsoftonline.us"
        );
    }
}
