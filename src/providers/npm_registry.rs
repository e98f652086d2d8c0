//! npm registries.

use super::url::{base, parse_http};
use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

/// The registry URL as `.npmrc` keys it: with a trailing `/`.
pub fn registry_url(field: &str, raw: &str) -> Result<String, ProviderError> {
    Ok(format!("{}/", base(&parse_http(field, raw)?, "")))
}

pub(super) struct NpmRegistryProvider;

impl Provider for NpmRegistryProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::NpmRegistry
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let npm = block(&spec.npm_registry, "npmRegistry")?;
        let url = registry_url("spec.npmRegistry.registryUrl", &npm.registry_url)?;
        let scope = npm
            .scope
            .as_deref()
            .map(|s| format!(" for {s}"))
            .unwrap_or_default();
        let auth = if npm.access_token.is_some() {
            "with a token"
        } else {
            "anonymously"
        };
        Ok(Validated {
            summary: format!("npm registry {url}{scope}, {auth}"),
        })
    }
}
