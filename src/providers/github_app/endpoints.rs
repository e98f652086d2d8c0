//! GitHub servers and App keys: URL normalisation, owners, private keys, permission names.

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::providers::ProviderError;
use crate::providers::url::{base, host, parse_http};

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
pub fn github_endpoints(field: &str, server_url: &str) -> Result<GithubEndpoints, ProviderError> {
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
pub fn owner_from_url(
    endpoints: &GithubEndpoints,
    owner_url: &str,
) -> Result<String, ProviderError> {
    let field = "spec.githubApp.ownerUrl";
    let url = parse_http(field, owner_url)?;
    let web = parse_http("spec.githubApp.serverUrl", &endpoints.web)?;
    let same_host =
        host(&url) == host(&web) || (!endpoints.enterprise && host(&url) == "www.github.com");
    if !same_host || url.port_or_known_default() != web.port_or_known_default() {
        return Err(ProviderError::config(
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
        _ => Err(ProviderError::config(
            "InvalidOwnerUrl",
            format!(
                "{field}: {owner_url:?} must name one account, e.g. {}/acme",
                endpoints.web
            ),
        )),
    }
}

/// Proves a PEM text is a usable RSA private key (PKCS#1 or PKCS#8) by signing a probe JWT.
pub fn check_private_key(field: &str, pem: &[u8]) -> Result<EncodingKey, ProviderError> {
    let invalid = |why: String| {
        ProviderError::config(
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
) -> Result<(), ProviderError> {
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
        Err(ProviderError::config(
            "InvalidPermissions",
            format!(
                "{field}: {bad:?} are not GitHub permission names (lowercase, e.g. contents, pull_requests)"
            ),
        ))
    }
}
