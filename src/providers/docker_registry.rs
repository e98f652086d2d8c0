//! Docker registry logins.

use super::url::{host, parse_http};
use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

/// The key a registry has in a `.dockerconfigjson` `auths` map: Docker Hub's historical
/// `https://index.docker.io/v1/`, otherwise `host[:port]`.
pub fn registry_key(field: &str, raw: &str) -> Result<String, ProviderError> {
    let url = parse_http(field, raw)?;
    let host = host(&url);
    if matches!(
        host.as_str(),
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return Ok("https://index.docker.io/v1/".into());
    }
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

pub(super) struct DockerRegistryProvider;

impl Provider for DockerRegistryProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::DockerRegistry
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let registry = block(&spec.docker_registry, "dockerRegistry")?;
        let key = registry_key("spec.dockerRegistry.url", &registry.url)?;
        Ok(Validated {
            summary: format!("Docker registry {key} as {}", registry.username),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_uses_its_historical_auths_key() {
        for url in [
            "https://docker.io",
            "https://index.docker.io/v1/",
            "https://registry-1.docker.io",
        ] {
            assert_eq!(
                registry_key("f", url).unwrap(),
                "https://index.docker.io/v1/"
            );
        }
    }

    #[test]
    fn other_registries_are_keyed_by_host_and_port() {
        assert_eq!(registry_key("f", "https://ghcr.io").unwrap(), "ghcr.io");
        assert_eq!(
            registry_key("f", "http://registry.local:5000/").unwrap(),
            "registry.local:5000"
        );
    }
}
