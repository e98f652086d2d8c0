//! GitHub Apps on github.com and GitHub Enterprise Server.

pub mod client;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::url::{base, host, parse_http};
use super::{ConfigError, Provider, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

/// The web and API bases of a GitHub server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GithubEndpoints {
    /// Where users browse, e.g. `https://github.com` or `https://ghe.example.com`.
    pub web: String,
    /// The REST API base, e.g. `https://api.github.com` or `https://ghe.example.com/api/v3`.
    pub api: String,
    /// True for GitHub Enterprise Server.
    pub enterprise: bool,
}

/// Normalises a GitHub server URL: github.com (also given as `www.` or `api.`) or a GitHub
/// Enterprise Server, whose API lives under `/api/v3`.
pub fn github_endpoints(field: &str, server_url: &str) -> Result<GithubEndpoints, ConfigError> {
    let url = parse_http(field, server_url)?;
    if matches!(
        host(&url).as_str(),
        "github.com" | "www.github.com" | "api.github.com"
    ) {
        return Ok(GithubEndpoints {
            web: "https://github.com".into(),
            api: "https://api.github.com".into(),
            enterprise: false,
        });
    }
    let web = base(&url, "/api/v3");
    Ok(GithubEndpoints {
        api: format!("{web}/api/v3"),
        web,
        enterprise: true,
    })
}

/// The account an `ownerUrl` names; it must live on the connection's server.
pub fn owner_from_url(endpoints: &GithubEndpoints, owner_url: &str) -> Result<String, ConfigError> {
    let field = "spec.githubApp.ownerUrl";
    let url = parse_http(field, owner_url)?;
    let web = parse_http("spec.githubApp.serverUrl", &endpoints.web)?;
    let same_host =
        host(&url) == host(&web) || (!endpoints.enterprise && host(&url) == "www.github.com");
    if !same_host || url.port_or_known_default() != web.port_or_known_default() {
        return Err(ConfigError::new(
            "InvalidOwnerUrl",
            format!(
                "{field}: {owner_url:?} is not on the connection's server {}",
                endpoints.web
            ),
        ));
    }
    let prefix = web.path().trim_end_matches('/');
    let rest = url.path().strip_prefix(prefix).unwrap_or(url.path());
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [owner] => Ok((*owner).to_string()),
        _ => Err(ConfigError::new(
            "InvalidOwnerUrl",
            format!(
                "{field}: {owner_url:?} must name one account, e.g. {}/acme",
                endpoints.web
            ),
        )),
    }
}

/// Proves a PEM text is a usable RSA private key (PKCS#1 or PKCS#8) by signing a probe JWT.
pub fn check_private_key(field: &str, pem: &[u8]) -> Result<EncodingKey, ConfigError> {
    let invalid = |why: String| {
        ConfigError::new(
            "InvalidPrivateKey",
            format!("{field}: not an RSA private key in PEM form (PKCS#1 or PKCS#8): {why}"),
        )
    };
    let key = EncodingKey::from_rsa_pem(pem).map_err(|e| invalid(describe(&e)))?;
    let probe = serde_json::json!({"iat": 0, "exp": 60, "iss": "probe"});
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &probe, &key)
        .map_err(|e| invalid(describe(&e)))?;
    Ok(key)
}

/// A jsonwebtoken error's kind, without any key material.
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidKeyFormat => "the key could not be parsed".into(),
        K::InvalidRsaKey(_) => "the key is not a valid RSA key".into(),
        K::Base64(_) => "the PEM body is not base64".into(),
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

/// Permission names as GitHub spells them (`contents`, `pull_requests`).
pub fn check_permission_names<'a>(
    field: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), ConfigError> {
    let bad: Vec<&str> = names
        .into_iter()
        .filter(|n| {
            let mut chars = n.chars();
            !(chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c == '_')
                && n.len() <= 64)
        })
        .map(String::as_str)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::new(
            "InvalidPermissions",
            format!(
                "{field}: {bad:?} are not GitHub permission names (lowercase, e.g. contents, pull_requests)"
            ),
        ))
    }
}

/// Why a live check of a GitHub App failed: a reason that tells a bad key, an unknown App, a
/// missing installation and an unreachable server apart.
fn verify_reason(e: &client::GithubError) -> &'static str {
    use client::GithubError as E;
    match e {
        E::Unauthorized(_) => "KeyRejected",
        E::AppNotFound(_) => "AppNotFound",
        E::NotFound(_) => "InstallationNotFound",
        E::Unreachable(_) => "Unreachable",
        E::RateLimited { .. } => "RateLimited",
        E::Unprocessable(_) | E::Http { .. } => "GithubError",
    }
}

/// The live check ("Test connection"): `GET /app` with the App JWT, then the installation
/// (by `installationId`, or looked up for `ownerUrl`). Returns the Verified message or a
/// (reason, message) pair.
pub async fn verify(
    github: &client::GithubClient,
    app: &crate::api::connection::GithubApp,
    secrets: &SecretValues,
) -> Result<String, (&'static str, String)> {
    let config = |e: ConfigError| (e.reason, e.message);
    let endpoints =
        github_endpoints("spec.githubApp.serverUrl", &app.server_url).map_err(config)?;
    let field = "spec.githubApp.privateKey";
    let pem = secrets.get(field, &app.private_key).map_err(config)?;
    let key = check_private_key(field, pem).map_err(config)?;
    let target = client::App::new(&endpoints.api, &app.app_id, key, pem);
    let failed = |e: client::GithubError| (verify_reason(&e), e.to_string());
    let slug = github.get_app(&target).await.map_err(failed)?;
    let installation = match (app.installation_id, &app.owner_url) {
        (Some(id), _) => {
            github
                .installation_permissions(&target, id as u64)
                .await
                .map_err(failed)?;
            format!(", installation {id}")
        }
        (None, Some(url)) => {
            let owner = owner_from_url(&endpoints, url).map_err(config)?;
            let id = github
                .installation_id(&target, &owner)
                .await
                .map_err(failed)?;
            format!(", installation {id} on {owner}")
        }
        (None, None) => String::new(),
    };
    Ok(format!("app {slug}{installation} at {}", endpoints.api))
}

pub(super) struct GithubAppProvider;

impl Provider for GithubAppProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::GithubApp
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        secrets: &SecretValues,
    ) -> Result<Validated, ConfigError> {
        let app = block(&spec.github_app, "githubApp")?;
        let endpoints = github_endpoints("spec.githubApp.serverUrl", &app.server_url)?;
        let owner = app
            .owner_url
            .as_deref()
            .map(|u| owner_from_url(&endpoints, u))
            .transpose()?;
        if let Some(max) = &app.max_permissions {
            check_permission_names("spec.githubApp.maxPermissions", max.keys())?;
        }
        let field = "spec.githubApp.privateKey";
        check_private_key(field, secrets.get(field, &app.private_key)?)?;
        let mut summary = format!("GitHub App {} at {}", app.app_id, endpoints.api);
        if let Some(owner) = owner {
            summary.push_str(&format!(", installed on {owner}"));
        }
        Ok(Validated { summary })
    }
}

#[cfg(test)]
mod tests;
