//! The endpoint policy (`--allowed-endpoints`): which servers Connections may send the
//! operator's calls to. A tenant names the servers of its own Connections; in a cluster whose
//! platform team wants the operator to talk only to known services (github.com, the company's
//! GitHub Enterprise, AWS), everything else is refused before any call, with the field named.

use serde_json::Value;

use super::ProviderError;
use super::url::{host, parse_http};
use crate::api::{ConnectionKind, ConnectionSpec};
use crate::conditions::reasons::ENDPOINT_NOT_ALLOWED;
use crate::glob;

/// The fields of a provider block that name a server.
const URL_FIELDS: [&str; 6] = [
    "serverUrl",
    "registryUrl",
    "stsEndpoint",
    "endpoint",
    "url",
    "apiUrl",
];

/// Host patterns (globs: `github.com`, `*.corp.example`, `*.amazonaws.com`); empty allows any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    hosts: Vec<String>,
}

impl EndpointPolicy {
    /// The policy of a comma-separated list of host patterns; an empty list allows any host.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hosts: Vec<String> = (text.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(bad) = hosts.iter().find(|h| h.contains('/') || h.contains(':')) {
            return Err(format!(
                "{bad:?}: name hosts (github.com, *.corp.example), without scheme, port or path"
            ));
        }
        Ok(Self { hosts })
    }

    /// Whether every server `spec` names (or defaults to) is allowed; else the first one that
    /// is not, with its field.
    pub fn check(&self, spec: &ConnectionSpec) -> Result<(), ProviderError> {
        if self.hosts.is_empty() {
            return Ok(());
        }
        for (field, url) in servers(spec) {
            let Ok(parsed) = parse_http(&field, &url) else {
                continue; // the provider's own validation names a malformed URL
            };
            let server = host(&parsed).to_ascii_lowercase();
            if !self.hosts.iter().any(|p| glob::matches(p, &server)) {
                return Err(ProviderError::config(
                    ENDPOINT_NOT_ALLOWED,
                    format!(
                        "{field}: {server} is not among the servers this operator may call \
                         (--allowed-endpoints {}); ask the platform team to allow it",
                        self.hosts.join(",")
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl EndpointPolicy {
    /// Whether a URL a server handed out (a registry's token realm) may be called, else
    /// `EndpointNotAllowed` saying who named it.
    pub fn check_url(&self, named_by: &str, url: &::url::Url) -> Result<(), ProviderError> {
        let server = host(url);
        if self.hosts.is_empty() || self.hosts.iter().any(|p| glob::matches(p, &server)) {
            return Ok(());
        }
        Err(ProviderError::config(
            ENDPOINT_NOT_ALLOWED,
            format!(
                "{named_by} sends patchbay to {server}, which is not among the servers this \
                 operator may call (--allowed-endpoints {}); ask the platform team to allow it",
                self.hosts.join(",")
            ),
        ))
    }
}

/// The servers a connection's calls go to, as (field, URL): every `serverUrl`, `registryUrl`,
/// `stsEndpoint`, `endpoint`, `url` and `apiUrl` in its provider block, and AWS's regional
/// defaults.
pub fn servers(spec: &ConnectionSpec) -> Vec<(String, String)> {
    let Some(kind) = spec.kind() else {
        return Vec::new();
    };
    let block = kind.field_name();
    let value = serde_json::to_value(spec).unwrap_or_default();
    let mut found = Vec::new();
    collect(&value[block], &format!("spec.{block}"), &mut found);
    let region = value[block]["region"].as_str().unwrap_or_default();
    match kind {
        ConnectionKind::Aws if value[block]["stsEndpoint"].is_null() => {
            if let Ok(url) = super::sts_endpoint(region, None) {
                found.push((format!("spec.{block}.region"), url));
            }
        }
        ConnectionKind::Ecr if value[block]["endpoint"].is_null() && !region.is_empty() => {
            found.push((
                format!("spec.{block}.region"),
                super::sts::ecr_endpoint(region),
            ));
        }
        _ => {}
    }
    found
}

fn collect(value: &Value, path: &str, found: &mut Vec<(String, String)>) {
    let Some(fields) = value.as_object() else {
        return;
    };
    for (key, inner) in fields {
        let here = format!("{path}.{key}");
        match inner {
            Value::String(url) if URL_FIELDS.contains(&key.as_str()) => {
                found.push((here, url.clone()))
            }
            Value::Object(_) => collect(inner, &here, found),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: serde_json::Value) -> ConnectionSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_server_outside_the_allowed_hosts_is_refused_with_its_field() {
        let policy = EndpointPolicy::parse("github.com, *.corp.example").unwrap();
        let ghes = spec(
            serde_json::json!({"githubApp": {"serverUrl": "https://ghe.corp.example",
            "appId": "1", "privateKey": {"name": "k", "key": "k"}}}),
        );
        assert!(policy.check(&ghes).is_ok());
        let elsewhere = spec(
            serde_json::json!({"githubApp": {"serverUrl": "https://ghe.evil.example",
            "appId": "1", "privateKey": {"name": "k", "key": "k"}}}),
        );
        let e = policy.check(&elsewhere).unwrap_err();
        assert_eq!(e.reason, ENDPOINT_NOT_ALLOWED);
        assert!(
            e.message
                .starts_with("spec.githubApp.serverUrl: ghe.evil.example"),
            "{}",
            e.message
        );
    }

    #[test]
    fn aws_connections_are_checked_at_their_regional_default_endpoint() {
        let aws = spec(serde_json::json!({"aws": {"region": "eu-west-1",
            "credentials": {"defaultChain": {}}}}));
        let found = servers(&aws);
        assert_eq!(
            found,
            vec![(
                "spec.aws.region".to_string(),
                "https://sts.eu-west-1.amazonaws.com".to_string()
            )]
        );
        assert!(
            EndpointPolicy::parse("*.amazonaws.com")
                .unwrap()
                .check(&aws)
                .is_ok()
        );
        assert!(
            EndpointPolicy::parse("github.com")
                .unwrap()
                .check(&aws)
                .is_err()
        );
    }

    #[test]
    fn no_pattern_allows_every_server_and_a_url_is_not_a_pattern() {
        let any = EndpointPolicy::parse("").unwrap();
        let spec = spec(
            serde_json::json!({"githubApp": {"serverUrl": "https://anywhere.example",
            "appId": "1", "privateKey": {"name": "k", "key": "k"}}}),
        );
        assert!(any.check(&spec).is_ok());
        assert!(EndpointPolicy::parse("https://github.com").is_err());
    }
}
