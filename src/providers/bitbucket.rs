//! Bitbucket Cloud OAuth consumers and Bitbucket Server / Data Center application links.

use super::url::{base, parse_http};
use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

pub(super) struct BitbucketCloudProvider;

impl Provider for BitbucketCloudProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::BitbucketCloud
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let cloud = block(&spec.bitbucket_cloud, "bitbucketCloud")?;
        Ok(Validated {
            summary: format!("Bitbucket Cloud consumer {}", cloud.key),
        })
    }
}

pub(super) struct BitbucketServerProvider;

impl Provider for BitbucketServerProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::BitbucketServer
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let server = block(&spec.bitbucket_server, "bitbucketServer")?;
        let url = parse_http("spec.bitbucketServer.serverUrl", &server.server_url)?;
        Ok(Validated {
            summary: format!("Bitbucket Server at {}", base(&url, "/rest/api/1.0")),
        })
    }
}
