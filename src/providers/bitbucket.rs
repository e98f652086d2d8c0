//! Bitbucket Cloud OAuth consumers and Bitbucket Server / Data Center application links, through
//! the OAuth engine ([`super::oauth`]).
//!
//! Bitbucket Cloud: refresh tokens are single-use (each refresh returns a new one); a consumer
//! marked private may also get tokens for itself (client credentials); git takes the token as
//! the password of user `x-token-auth`. Bitbucket Data Center: refresh tokens are single-use;
//! its tokens go in a bearer header (`git -c http.extraHeader="Authorization: Bearer ..."`), so
//! they are written as `opaque` with an `authorization` key.

use super::oauth::{App, ClientAuth, OAuthKind, Refresh};
use super::url::{base, parse_http};
use super::{ProviderError, Validated, block};
use crate::api::{Connection, ConnectionKind, ConnectionSpec, SecretKeyRef};

/// Refresh tokens are single-use; the access token they replace stays valid until it expires.
const SINGLE_USE: Refresh = Refresh {
    single_use: true,
    revokes_access_token: None,
};

pub(super) struct BitbucketCloudProvider;

impl OAuthKind for BitbucketCloudProvider {
    const KIND: ConnectionKind = ConnectionKind::BitbucketCloud;

    fn check(&self, spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
        let cloud = block(&spec.bitbucket_cloud, "bitbucketCloud")?;
        parse_http("spec.bitbucketCloud.serverUrl", &cloud.server_url)?;
        Ok(Validated {
            summary: format!("Bitbucket Cloud consumer {}", cloud.key),
        })
    }

    fn client_secret<'a>(
        &self,
        conn: &'a Connection,
    ) -> Result<(&'static str, &'a SecretKeyRef), ProviderError> {
        let cloud = block(&conn.spec.bitbucket_cloud, "bitbucketCloud")?;
        Ok(("spec.bitbucketCloud.secret", &cloud.secret))
    }

    fn app<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Result<App<'a>, ProviderError> {
        let cloud = block(&conn.spec.bitbucket_cloud, "bitbucketCloud")?;
        let web = base(
            &parse_http("spec.bitbucketCloud.serverUrl", &cloud.server_url)?,
            "",
        );
        Ok(App {
            provider: "Bitbucket Cloud",
            token_url: format!("{web}/site/oauth2/access_token"),
            client_id: &cloud.key,
            client_secret,
            auth: ClientAuth::Basic,
            refresh: SINGLE_USE,
            client_credentials: true,
            username: Some("x-token-auth"),
            git_url: web,
            extra: Vec::new(),
            default_scope: None,
            variable: None,
        })
    }

    fn authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        Ok(Some(
            self.app(conn, "")?
                .token_url
                .replace("/access_token", "/authorize"),
        ))
    }
}

pub(super) struct BitbucketServerProvider;

impl OAuthKind for BitbucketServerProvider {
    const KIND: ConnectionKind = ConnectionKind::BitbucketServer;

    fn check(&self, spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
        let server = block(&spec.bitbucket_server, "bitbucketServer")?;
        let url = parse_http("spec.bitbucketServer.serverUrl", &server.server_url)?;
        Ok(Validated {
            summary: format!("Bitbucket Server at {}", base(&url, "/rest/api/1.0")),
        })
    }

    fn client_secret<'a>(
        &self,
        conn: &'a Connection,
    ) -> Result<(&'static str, &'a SecretKeyRef), ProviderError> {
        let server = block(&conn.spec.bitbucket_server, "bitbucketServer")?;
        Ok(("spec.bitbucketServer.clientSecret", &server.client_secret))
    }

    fn app<'a>(
        &self,
        conn: &'a Connection,
        client_secret: &'a str,
    ) -> Result<App<'a>, ProviderError> {
        let server = block(&conn.spec.bitbucket_server, "bitbucketServer")?;
        let url = parse_http("spec.bitbucketServer.serverUrl", &server.server_url)?;
        let web = base(&url, "/rest/api/1.0");
        Ok(App {
            provider: "Bitbucket Data Center",
            token_url: format!("{web}/rest/oauth2/latest/token"),
            client_id: &server.client_id,
            client_secret,
            auth: ClientAuth::Form,
            refresh: SINGLE_USE,
            client_credentials: false,
            username: None,
            git_url: web,
            extra: Vec::new(),
            default_scope: None,
            variable: None,
        })
    }

    fn authorization_url(&self, conn: &Connection) -> Result<Option<String>, ProviderError> {
        Ok(Some(
            self.app(conn, "")?
                .token_url
                .replace("/latest/token", "/latest/authorize"),
        ))
    }
}
