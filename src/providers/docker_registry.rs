//! Docker registry logins: the login itself as a `dockerconfigjson` (long-lived, copied only
//! where the connection allows), or a short-lived bearer token from the registry's token
//! service (the Docker token protocol) scoped to the repositories a token names.
//!
//! The live check and the token request follow what `docker login` does: `GET /v2/`, then, for
//! a `Bearer` challenge, `GET <realm>?service=...&account=<user>` with the login as basic auth;
//! for a `Basic` challenge, `GET /v2/` again with it. The realm is the registry's answer, so it
//! is held to the endpoint policy and may not downgrade https to http.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;

use super::http::{self, AUTHENTICATION_FAILED, Answer};
use super::oauth::{MAX_EXPIRES_IN, expires_in_seconds};
use super::url::{host, parse_http};
use super::{
    Env, Granted, Lifetime, Minted, Plan, Provider, ProviderError, Request, SecretValues, Services,
    Validated, Verification, block, copy_allowed,
};
use crate::api::connection::DockerRegistry;
use crate::api::token::SecretFormat;
use crate::api::{Connection, ConnectionKind, ConnectionSpec};
use crate::conditions::reasons;
use crate::output::Credential;

/// The condition reason of a URL that has no registry API.
const NOT_A_REGISTRY: &str = "NotARegistry";
/// The lifetime the token protocol assumes when the service names none.
const DEFAULT_TOKEN_SECONDS: u64 = 60;
/// The longest token accepted.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The key a registry has in a `.dockerconfigjson` `auths` map: Docker Hub's historical
/// `https://index.docker.io/v1/`, otherwise `host[:port]`.
pub fn registry_key(field: &str, raw: &str) -> Result<String, ProviderError> {
    let url = parse_http(field, raw)?;
    if is_docker_hub(&host(&url)) {
        return Ok("https://index.docker.io/v1/".into());
    }
    Ok(host_port(&url))
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

fn host_port(url: &::url::Url) -> String {
    match url.port() {
        Some(port) => format!("{}:{port}", host(url)),
        None => host(url),
    }
}

/// Where the registry API of `raw` answers: Docker Hub's is `https://registry-1.docker.io`,
/// any other registry's is the root of its host.
pub fn api_base(field: &str, raw: &str) -> Result<String, ProviderError> {
    let url = parse_http(field, raw)?;
    if is_docker_hub(&host(&url)) {
        return Ok("https://registry-1.docker.io".into());
    }
    Ok(format!("{}://{}", url.scheme(), host_port(&url)))
}

/// A `WWW-Authenticate` challenge: its scheme (lowercase) and parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic`.
    pub scheme: String,
    /// `realm`, `service`, `scope`, ... (names lowercase).
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `Bearer realm="...",service="..."`; quoted values may hold commas.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
            let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
            if name.is_empty() || chars.next() != Some('=') {
                break;
            }
            let value: String = if chars.next_if_eq(&'"').is_some() {
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
                value
            } else {
                std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect()
            };
            params.push((name.trim().to_ascii_lowercase(), value));
        }
        Some(Self {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        (self.params.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A registry's connection as calls need it.
struct Registry<'a> {
    block: &'a DockerRegistry,
    base: String,
    password: &'a str,
    client: reqwest::Client,
}

/// What a registry's `/v2/` says about how to sign in.
enum Door {
    /// Anyone may come in.
    Open,
    /// Basic auth on the registry itself.
    Basic,
    /// A token service: the realm URL and the service name.
    Token { realm: ::url::Url, service: String },
}

impl<'a> Registry<'a> {
    fn new(
        conn: &'a Connection,
        env: &Env<'_>,
        secrets: &'a SecretValues,
    ) -> Result<Self, ProviderError> {
        let block = block(&conn.spec.docker_registry, "dockerRegistry")?;
        Ok(Self {
            base: api_base("spec.dockerRegistry.url", &block.url)?,
            password: secrets.text("spec.dockerRegistry.password", &block.password)?,
            client: http::client(env.ca_bundle)?,
            block,
        })
    }

    /// `GET /v2/`, with the login as basic auth when `login`.
    async fn ping(&self, login: bool) -> Result<Answer, ProviderError> {
        let mut request = self.client.get(format!("{}/v2/", self.base));
        if login {
            request = request.basic_auth(&self.block.username, Some(self.password));
        }
        http::send(request, &self.base).await
    }

    /// How the registry wants to be signed in to.
    async fn door(&self, env: &Env<'_>) -> Result<Door, ProviderError> {
        let answer = self.ping(false).await?;
        match answer.status {
            s if s.is_success() => return Ok(Door::Open),
            StatusCode::UNAUTHORIZED => {}
            StatusCode::NOT_FOUND => {
                return Err(ProviderError::transient(
                    NOT_A_REGISTRY,
                    format!(
                        "{} has no registry API at /v2/ (HTTP 404); check spec.dockerRegistry.url",
                        self.base
                    ),
                ));
            }
            _ => return Err(answer.unexpected(&format!("{}/v2/", self.base))),
        }
        let challenge = (answer.header("www-authenticate")).and_then(Challenge::parse);
        let invalid = |why: &str| {
            ProviderError::transient(
                reasons::INVALID_RESPONSE,
                format!("{}/v2/ answered 401 {why}", self.base),
            )
        };
        let challenge = challenge.ok_or_else(|| invalid("without a WWW-Authenticate challenge"))?;
        match challenge.scheme.as_str() {
            "basic" => Ok(Door::Basic),
            "bearer" => {
                let realm = (challenge.param("realm"))
                    .ok_or_else(|| invalid("with a Bearer challenge that names no realm"))?;
                let realm = self.realm(env, realm)?;
                let service = challenge.param("service").unwrap_or_default().to_string();
                Ok(Door::Token { realm, service })
            }
            _ => Err(invalid(
                "with a challenge patchbay does not speak (neither Basic nor Bearer)",
            )),
        }
    }

    /// The token realm, if patchbay may send the login there.
    fn realm(&self, env: &Env<'_>, raw: &str) -> Result<::url::Url, ProviderError> {
        token_realm(&self.base, raw, env.endpoints)
    }

    /// Asks the token service for a token for `scopes` (none: a sign-in check).
    async fn token(
        &self,
        realm: &::url::Url,
        service: &str,
        scopes: &[String],
    ) -> Result<(String, Option<u64>), ProviderError> {
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if !service.is_empty() {
                query.append_pair("service", service);
            }
            query.append_pair("account", &self.block.username);
            for scope in scopes {
                query.append_pair("scope", scope);
            }
        }
        let request = (self.client.get(url)).basic_auth(&self.block.username, Some(self.password));
        let server = format!("the token service {}", realm.origin().ascii_serialization());
        let answer = http::send(request, &server).await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(self.refused(&server, &answer));
            }
            _ => return Err(answer.unexpected(&server)),
        }
        let body = answer.json();
        let token = [&body["token"], &body["access_token"]]
            .into_iter()
            .find_map(Value::as_str)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN && t.chars().all(is_token_char))
            .ok_or_else(|| {
                ProviderError::transient(
                    reasons::INVALID_RESPONSE,
                    format!("{server} answered without a usable token"),
                )
            })?;
        Ok((token.to_string(), expires_in_seconds(&body["expires_in"])))
    }

    fn refused(&self, server: &str, answer: &Answer) -> ProviderError {
        ProviderError::transient(
            AUTHENTICATION_FAILED,
            format!(
                "{server} refused user {:?} (HTTP {}{}): wrong user name or password in \
                 spec.dockerRegistry, or the account is locked",
                self.block.username,
                answer.status.as_u16(),
                answer.excerpt()
            ),
        )
    }

    /// The live check: sign in as `docker login` does.
    async fn check(&self, env: &Env<'_>) -> Result<String, ProviderError> {
        match self.door(env).await? {
            Door::Open => Ok(format!(
                "{}/v2/ answers without signing in; the login was not needed",
                self.base
            )),
            Door::Basic => {
                let answer = self.ping(true).await?;
                match answer.status {
                    s if s.is_success() => Ok(format!(
                        "{} accepted user {:?} (basic auth)",
                        self.base, self.block.username
                    )),
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        Err(self.refused(&self.base, &answer))
                    }
                    _ => Err(answer.unexpected(&format!("{}/v2/", self.base))),
                }
            }
            Door::Token { realm, service } => {
                self.token(&realm, &service, &[]).await?;
                Ok(format!(
                    "the token service of {} issued a token to user {:?}",
                    self.base, self.block.username
                ))
            }
        }
    }
}

/// The realm a registry at `base` named in its challenge, if patchbay may send the login
/// there: an http(s) URL with a host, no downgrade from https to http, and allowed by the
/// endpoint policy (the registry's answer is untrusted).
pub fn token_realm(
    base: &str,
    raw: &str,
    policy: &super::EndpointPolicy,
) -> Result<::url::Url, ProviderError> {
    let named_by = format!("the token realm {:?} of {base}", http::printable(raw, 120));
    let realm = ::url::Url::parse(raw).map_err(|e| {
        ProviderError::transient(reasons::INVALID_RESPONSE, format!("{named_by}: {e}"))
    })?;
    let downgrade = base.starts_with("https:") && realm.scheme() != "https";
    if !matches!(realm.scheme(), "http" | "https") || downgrade || realm.host_str().is_none() {
        return Err(ProviderError::transient(
            reasons::INVALID_RESPONSE,
            format!("{named_by} is not an https URL; patchbay does not send the login there"),
        ));
    }
    policy.check_url(&named_by, &realm)?;
    Ok(realm)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic()
}

/// What a registry token grants, read from its claims when it is a JWT (informational only:
/// nothing is decided on it).
fn granted(token: &str) -> Granted {
    let claims: Value =
        jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap_or(Value::Null);
    let permissions = (claims["access"].as_array().into_iter().flatten())
        .take(50)
        .filter_map(|entry| {
            let (kind, name) = (entry["type"].as_str()?, entry["name"].as_str()?);
            let actions: Vec<&str> = (entry["actions"].as_array()?.iter())
                .filter_map(Value::as_str)
                .collect();
            let permission = http::printable(&format!("{kind}:{name}"), 120);
            Some((permission, http::printable(&actions.join(","), 120)))
        })
        .collect();
    Granted {
        permissions,
        ..Granted::default()
    }
}

/// When a token issued `sent_at` with `expires_in` seconds (per the protocol, 60 when unset or
/// zero; believed up to [`MAX_EXPIRES_IN`]) expires.
pub fn token_expiry(sent_at: Timestamp, expires_in: Option<u64>) -> Timestamp {
    let seconds = expires_in
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_TOKEN_SECONDS);
    let lifetime = Duration::from_secs(seconds).min(MAX_EXPIRES_IN);
    let lifetime = SignedDuration::try_from(lifetime).unwrap_or(SignedDuration::ZERO);
    sent_at.checked_add(lifetime).unwrap_or(sent_at)
}

pub(super) struct DockerRegistryProvider;

#[async_trait]
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

    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        if let Some(registry) = &request.token.spec.registry {
            let mut scopes = registry.scopes.clone();
            scopes.sort();
            return Ok(Plan {
                hash_parts: scopes,
                default_format: SecretFormat::DockerConfigJson,
                lifetime: Lifetime::Expiring,
                reads: Vec::new(),
                grant: None,
                late: None,
            });
        }
        let instead = "ask for a scoped, short-lived token (spec.registry) or use a connection in this namespace";
        copy_allowed(
            request.token,
            request.connection,
            "the registry login",
            instead,
        )?;
        Ok(Plan::projection(
            "registry login",
            SecretFormat::DockerConfigJson,
        ))
    }

    async fn verify(
        &self,
        conn: &Connection,
        env: &Env<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Verification {
        let check = async { Registry::new(conn, env, secrets)?.check(env).await };
        check.await.into()
    }

    async fn mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Result<Minted, ProviderError> {
        let conn = request.connection;
        let registry = Registry::new(conn, request.env, secrets)?;
        let key = registry_key("spec.dockerRegistry.url", &registry.block.url)?;
        let Some(wanted) = &request.token.spec.registry else {
            return Ok(Minted::credential(Credential::DockerLogin {
                registry: key,
                username: registry.block.username.clone(),
                password: registry.password.to_string(),
                expires_at: None,
            }));
        };
        let Door::Token { realm, service } = registry.door(request.env).await? else {
            return Err(ProviderError::config(
                "TokenServiceNotAvailable",
                format!(
                    "spec.registry: {} has no token service (its /v2/ does not answer with a \
                     Bearer challenge); remove spec.registry to receive the login itself",
                    registry.base
                ),
            ));
        };
        let sent_at = Timestamp::now();
        let (token, expires_in) = registry.token(&realm, &service, &wanted.scopes).await?;
        let mut minted = Minted::credential(Credential::RegistryToken {
            registry: key,
            expires_at: token_expiry(sent_at, expires_in),
            token: token.clone(),
        });
        minted.granted = Some(granted(&token));
        Ok(minted)
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
            assert_eq!(api_base("f", url).unwrap(), "https://registry-1.docker.io");
        }
    }

    #[test]
    fn other_registries_are_keyed_by_host_and_port() {
        assert_eq!(registry_key("f", "https://ghcr.io").unwrap(), "ghcr.io");
        assert_eq!(
            registry_key("f", "http://registry.local:5000/").unwrap(),
            "registry.local:5000"
        );
        assert_eq!(
            api_base("f", "http://registry.local:5000/some/path").unwrap(),
            "http://registry.local:5000"
        );
    }

    #[test]
    fn a_bearer_challenge_is_parsed_with_commas_inside_quotes() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("registry.example"));
        assert_eq!(c.param("scope"), Some("repository:team/app:pull,push"));
        let basic = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(basic.scheme, "basic");
    }

    #[test]
    fn a_malformed_challenge_never_panics() {
        for header in [
            "",
            "Bearer",
            "Bearer realm",
            "Bearer realm=\"unterminated",
            "Bearer =x,,,=",
            "Bearer realm=\"a\\",
        ] {
            let _ = Challenge::parse(header);
        }
    }

    #[test]
    fn a_realm_that_downgrades_to_http_or_leaves_the_allowed_endpoints_gets_no_login() {
        let any = super::super::EndpointPolicy::default();
        let https = "https://registry.corp.example";
        let downgrade = token_realm(https, "http://registry.corp.example/token", &any);
        assert_eq!(downgrade.unwrap_err().reason, "InvalidResponse");
        assert!(token_realm(https, "file:///etc/passwd", &any).is_err());
        assert!(token_realm(https, "not a url", &any).is_err());
        assert!(token_realm(https, "https://auth.corp.example/token", &any).is_ok());
        assert!(token_realm("http://127.0.0.1:5000", "http://127.0.0.1:5001/token", &any).is_ok());
        let policy = super::super::EndpointPolicy::parse("*.corp.example").unwrap();
        let elsewhere = token_realm(https, "https://collector.evil.example/token", &policy);
        let e = elsewhere.unwrap_err();
        assert_eq!(e.reason, "EndpointNotAllowed");
        assert!(
            e.message.contains("collector.evil.example"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_token_lives_sixty_seconds_unless_the_service_says_otherwise_and_at_most_a_day() {
        let sent = Timestamp::from_second(1_800_000_000).unwrap();
        let after = |t: Timestamp| t.duration_since(sent).as_secs();
        let answered = |v: Value| after(token_expiry(sent, expires_in_seconds(&v)));
        assert_eq!(answered(Value::Null), 60);
        assert_eq!(answered(Value::from(300)), 300);
        assert_eq!(answered(Value::from(-5)), 60);
        assert_eq!(answered(Value::from(0)), 60);
        assert_eq!(answered(Value::from(i64::MAX)), 24 * 3600);
    }

    #[test]
    fn what_a_jwt_grants_is_read_for_the_status_and_anything_else_grants_nothing_shown() {
        // {"alg":"ES256"} . {"access":[{"type":"repository","name":"team/app","actions":["pull","push"]}]}
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJhY2Nlc3MiOlt7InR5cGUiOiJyZXBvc2l0b3J5IiwibmFtZSI6InRlYW0vYXBwIiwiYWN0aW9ucyI6WyJwdWxsIiwicHVzaCJdfV19.sig";
        assert_eq!(
            granted(jwt)
                .permissions
                .get("repository:team/app")
                .map(String::as_str),
            Some("pull,push")
        );
        assert!(granted("opaque-token").permissions.is_empty());
    }
}
