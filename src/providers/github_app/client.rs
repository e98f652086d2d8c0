//! The GitHub REST calls a GitHub App connection makes: App JWTs (reused until near expiry),
//! installation lookups (cached per app and owner, dropped on 401/404), installation tokens,
//! revocation, and a user's role on a repository.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use k8s_openapi::jiff::Timestamp;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::scope::{UserRole, role_from_github};

/// Every GitHub call gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer read from a GitHub server; a larger (or endless) one is refused.
pub const MAX_BODY: usize = 1 << 20;
/// App JWTs live 9 minutes (GitHub allows 10) and are replaced a minute before they expire.
const JWT_LIFETIME: i64 = 540;
const JWT_REFRESH_MARGIN: i64 = 60;

/// What identifies a GitHub App on a server.
#[derive(Clone)]
pub struct App {
    /// REST API base, e.g. `https://api.github.com`.
    pub api: String,
    /// Numeric App ID.
    pub app_id: String,
    /// The App's private key.
    pub key: EncodingKey,
    /// A fingerprint of the key, so a cached JWT is only reused with the key that signed it.
    pub key_id: String,
}

impl App {
    /// An App on `api` with the key parsed from `pem`.
    pub fn new(api: &str, app_id: &str, key: EncodingKey, pem: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let key_id = hex::encode(&Sha256::digest(pem)[..8]);
        Self {
            api: api.to_string(),
            app_id: app_id.to_string(),
            key,
            key_id,
        }
    }
}

/// A failed GitHub call, classified for status reasons and retries. Messages carry GitHub's
/// own explanation, never a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    /// 401: GitHub refused the App JWT or the token (bad key, wrong App ID, clock skew).
    #[error("GitHub refused the credentials: {0}")]
    Unauthorized(String),
    /// 404 for the App itself.
    #[error("GitHub does not know the App: {0}")]
    AppNotFound(String),
    /// 404 for an installation or repository.
    #[error("{0}")]
    NotFound(String),
    /// 422: GitHub refused the request (repositories or permissions the installation lacks).
    #[error("GitHub refused the request: {0}")]
    Unprocessable(String),
    /// 403/429 with rate-limit headers: retry no sooner than `retry_after`.
    #[error("GitHub rate limit: {message}; retrying in {} s", retry_after.as_secs())]
    RateLimited {
        /// GitHub's message.
        message: String,
        /// How long GitHub asks to wait.
        retry_after: Duration,
    },
    /// Any other HTTP error.
    #[error("GitHub answered {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// An answer patchbay cannot use (too large, not what GitHub sends).
    #[error("GitHub's answer is unusable: {0}")]
    InvalidResponse(String),
    /// No answer: DNS, connection, TLS or timeout.
    #[error("GitHub at {api} is unreachable: {cause}")]
    Unreachable {
        /// The API base called.
        api: String,
        /// Why there was no answer (never a credential: they travel in headers).
        cause: String,
    },
}

impl GithubError {
    /// The condition reason this error is reported under.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "GithubUnauthorized",
            Self::AppNotFound(_) => "GithubAppNotFound",
            Self::NotFound(_) => "GithubNotFound",
            Self::Unprocessable(_) => "GithubRefused",
            Self::RateLimited { .. } => "GithubRateLimited",
            Self::Http { .. } => "GithubError",
            Self::Unreachable { .. } => "GithubUnreachable",
            Self::InvalidResponse(_) => "GithubInvalidResponse",
        }
    }

    /// How long GitHub asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

impl From<GithubError> for crate::providers::ProviderError {
    fn from(e: GithubError) -> Self {
        use crate::providers::network;
        if let GithubError::Unreachable { api, cause } = &e
            && network::is_certificate_failure(cause)
        {
            return network::certificate_not_trusted(api, cause);
        }
        Self {
            reason: e.reason(),
            message: e.to_string(),
            retry_after: crate::providers::clamp_retry_after(e.retry_after()),
            permanent: false,
        }
    }
}

/// An installation token as GitHub issued it.
pub struct Minted {
    /// The token (opaque: its length and prefix mean nothing).
    pub token: String,
    /// When it expires.
    pub expires_at: Timestamp,
    /// Permissions as granted.
    pub permissions: std::collections::BTreeMap<String, String>,
    /// Repository names as granted.
    pub repositories: Vec<String>,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A GitHub client: an HTTP client (per trusted CA bundle, from
/// [`Network`](crate::providers::Network)) over caches shared by all reconciles: one JWT per
/// App, one installation id per (App, owner).
#[derive(Clone)]
pub struct GithubClient {
    http: reqwest::Client,
    jwts: Arc<Mutex<Jwts>>,
    installations: Arc<Mutex<Installations>>,
}

/// App JWTs and their expiry, per (API, App and key).
type Jwts = HashMap<(String, String), (String, i64)>;
/// Installation ids, per (API, App, owner).
type Installations = HashMap<(String, String, String), u64>;

impl Default for GithubClient {
    fn default() -> Self {
        Self::new()
    }
}

impl GithubClient {
    /// A client with explicit timeouts, trusting the system's roots.
    pub fn new() -> Self {
        Self {
            http: Self::http_builder().build().unwrap_or_default(),
            jwts: Arc::default(),
            installations: Arc::default(),
        }
    }

    /// How every GitHub HTTP client is built (before CA bundles are added).
    pub fn http_builder() -> reqwest::ClientBuilder {
        // Redirects are not followed: a connection's server answers for itself, and a redirect
        // would carry the App JWT or a user's token to a host the connection does not name.
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
    }

    /// This client's caches with `http` (a client that trusts a connection's CA bundle).
    pub fn with_http(&self, http: reqwest::Client) -> Self {
        Self {
            http,
            jwts: self.jwts.clone(),
            installations: self.installations.clone(),
        }
    }

    /// The App's JWT: RS256, integer `iat` a minute in the past, `exp` nine minutes ahead,
    /// `iss` the numeric App ID; reused until a minute before it expires.
    pub fn app_jwt(&self, app: &App, now: i64) -> Result<String, GithubError> {
        let key = (app.api.clone(), format!("{}/{}", app.app_id, app.key_id));
        let mut jwts = self.jwts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((jwt, exp)) = jwts.get(&key)
            && exp - now > JWT_REFRESH_MARGIN
        {
            return Ok(jwt.clone());
        }
        let iss: u64 = app.app_id.parse().map_err(|_| {
            GithubError::Unauthorized(format!("App ID {:?} is not numeric", app.app_id))
        })?;
        let exp = now + JWT_LIFETIME;
        let claims = json!({"iat": now - 60, "exp": exp, "iss": iss});
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &app.key)
            .map_err(|_| GithubError::Unauthorized("the App's private key cannot sign".into()))?;
        jwts.insert(key, (jwt.clone(), exp));
        Ok(jwt)
    }

    fn request(&self, method: Method, url: String) -> RequestBuilder {
        self.http
            .request(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
    }

    async fn send(&self, req: RequestBuilder, api: &str) -> Result<Response, GithubError> {
        req.send().await.map_err(|e| GithubError::Unreachable {
            api: api.to_string(),
            cause: unreachable_cause(&e),
        })
    }

    /// `GET /app`: the App's slug, proving the key and App ID.
    pub async fn get_app(&self, app: &App) -> Result<String, GithubError> {
        let jwt = self.app_jwt(app, now())?;
        let req = self
            .request(Method::GET, format!("{}/app", app.api))
            .bearer_auth(jwt);
        let body = ok_json(self.send(req, &app.api).await?, Lookup::App).await?;
        Ok(body["slug"]
            .as_str()
            .or(body["name"].as_str())
            .unwrap_or_default()
            .to_string())
    }

    /// The installation of the App on `owner` (an organization, else a user), cached.
    pub async fn installation_id(&self, app: &App, owner: &str) -> Result<u64, GithubError> {
        let key = (
            app.api.clone(),
            app.app_id.clone(),
            owner.to_ascii_lowercase(),
        );
        if let Some(id) = self
            .installations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(*id);
        }
        let jwt = self.app_jwt(app, now())?;
        let mut last = None;
        for path in [
            format!("orgs/{owner}/installation"),
            format!("users/{owner}/installation"),
        ] {
            let req = self
                .request(Method::GET, format!("{}/{path}", app.api))
                .bearer_auth(&jwt);
            match ok_json(self.send(req, &app.api).await?, Lookup::Installation).await {
                Ok(body) => {
                    let id = body["id"].as_u64().ok_or_else(|| GithubError::Http {
                        status: 200,
                        message: "installation without an id".into(),
                    })?;
                    self.installations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key, id);
                    return Ok(id);
                }
                Err(GithubError::NotFound(_)) => last = Some(path),
                Err(e) => return Err(e),
            }
        }
        Err(GithubError::NotFound(format!(
            "the App is not installed on {owner} (looked up {})",
            last.unwrap_or_default()
        )))
    }

    /// Forgets a cached installation id (after GitHub answered 401 or 404 for it).
    pub fn forget_installation(&self, app: &App, owner: &str) {
        let key = (
            app.api.clone(),
            app.app_id.clone(),
            owner.to_ascii_lowercase(),
        );
        self.installations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// The installation's permissions, for lowering to a user's when none were requested.
    pub async fn installation_permissions(
        &self,
        app: &App,
        id: u64,
    ) -> Result<std::collections::BTreeMap<String, String>, GithubError> {
        let jwt = self.app_jwt(app, now())?;
        let req = self
            .request(Method::GET, format!("{}/app/installations/{id}", app.api))
            .bearer_auth(jwt);
        let body = ok_json(self.send(req, &app.api).await?, Lookup::Installation).await?;
        Ok(string_map(&body["permissions"]))
    }

    /// `POST /app/installations/{id}/access_tokens` for named repositories.
    pub async fn create_token(
        &self,
        app: &App,
        installation: u64,
        repositories: &[String],
        permissions: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Result<Minted, GithubError> {
        let jwt = self.app_jwt(app, now())?;
        let mut body = json!({"repositories": repositories});
        if let Some(p) = permissions {
            body["permissions"] = json!(p);
        }
        let url = format!("{}/app/installations/{installation}/access_tokens", app.api);
        let req = self.request(Method::POST, url).bearer_auth(jwt).json(&body);
        let body = ok_json(self.send(req, &app.api).await?, Lookup::Installation).await?;
        let token = body["token"].as_str().unwrap_or_default().to_string();
        let expires_at = body["expires_at"]
            .as_str()
            .and_then(|s| s.parse::<Timestamp>().ok())
            .ok_or_else(|| GithubError::Http {
                status: 201,
                message: "token without a valid expires_at".into(),
            })?;
        if token.is_empty() {
            return Err(GithubError::Http {
                status: 201,
                message: "an empty token".into(),
            });
        }
        Ok(Minted {
            token,
            expires_at,
            permissions: string_map(&body["permissions"]),
            repositories: repository_names(&body["repositories"]),
        })
    }

    /// `DELETE /installation/token`: revokes an installation token.
    pub async fn revoke(&self, api: &str, token: &str) -> Result<(), GithubError> {
        let req = self
            .request(Method::DELETE, format!("{api}/installation/token"))
            .bearer_auth(token);
        let response = self.send(req, api).await?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(()),
            _ => ok_json(response, Lookup::Token).await.map(|_| ()),
        }
    }

    /// The user's role on a repository, read with the user's own token; `None` when the user
    /// cannot see it.
    pub async fn user_role(
        &self,
        api: &str,
        user_token: &str,
        owner: &str,
        repo: &str,
    ) -> Result<Option<UserRole>, GithubError> {
        let req = self
            .request(Method::GET, format!("{api}/repos/{owner}/{repo}"))
            .bearer_auth(user_token);
        match ok_json(self.send(req, api).await?, Lookup::Repository).await {
            Ok(body) => Ok(role_from_github(&body["permissions"])),
            Err(GithubError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Why a request got no answer, from the innermost error that says (connection refused, a
/// DNS failure, a TLS problem), without the URL.
fn unreachable_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = cause.to_string();
    let text = if text.is_empty() {
        "no answer".to_string()
    } else {
        text
    };
    text.chars().take(200).collect()
}

fn now() -> i64 {
    Timestamp::now().as_second()
}

/// The most permissions kept of an answer: GitHub has about fifty. What a server says it
/// granted goes into the token's status, cached for as long as the token lives; a server that
/// names thousands must not grow every token it answers for.
const MAX_PERMISSIONS: usize = 100;
/// The most repositories kept of an answer: a token names at most 500 (`spec.github`).
const MAX_REPOSITORIES: usize = 500;
/// The longest name kept (permission, level, repository), in characters; GitHub's repository
/// names have at most 100.
const MAX_NAME_CHARS: usize = 100;

/// A granted name as it is kept: printable characters, at most [`MAX_NAME_CHARS`].
fn granted_name(s: &str) -> String {
    crate::providers::http::printable(s, MAX_NAME_CHARS)
}

/// The string entries of a `permissions` object, at most [`MAX_PERMISSIONS`], each name and
/// level a [`granted_name`].
fn string_map(v: &Value) -> std::collections::BTreeMap<String, String> {
    (v.as_object().into_iter().flatten())
        .filter_map(|(k, v)| Some((granted_name(k), granted_name(v.as_str()?))))
        .take(MAX_PERMISSIONS)
        .collect()
}

/// The `name`s of a `repositories` array, at most [`MAX_REPOSITORIES`], each a
/// [`granted_name`].
fn repository_names(v: &Value) -> Vec<String> {
    (v.as_array().into_iter().flatten())
        .filter_map(|r| r["name"].as_str())
        .map(granted_name)
        .take(MAX_REPOSITORIES)
        .collect()
}

/// What a call looked up, to word a 404.
#[derive(Clone, Copy)]
enum Lookup {
    App,
    Installation,
    Repository,
    Token,
}

/// The body of an answer, read chunk by chunk up to [`MAX_BODY`] bytes.
async fn bounded_body(mut response: Response) -> Result<Vec<u8>, GithubError> {
    let mut body = Vec::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(body),
            Err(e) => {
                let api = response.url().origin().ascii_serialization();
                let cause = unreachable_cause(&e);
                return Err(GithubError::Unreachable { api, cause });
            }
        };
        if body.len() + chunk.len() > MAX_BODY {
            return Err(GithubError::InvalidResponse(format!(
                "the answer is larger than {} KiB",
                MAX_BODY / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
}

/// The JSON body of a successful answer, or the error GitHub's answer means.
async fn ok_json(response: Response, lookup: Lookup) -> Result<Value, GithubError> {
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value = match bounded_body(response).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(e) => return Err(e),
    };
    if status.is_success() {
        return Ok(body);
    }
    let message = body["message"]
        .as_str()
        .unwrap_or("no message")
        .chars()
        .take(300)
        .collect::<String>();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let rate_limited =
        header("retry-after").is_some() || header("x-ratelimit-remaining") == Some(0);
    Err(match status.as_u16() {
        401 => GithubError::Unauthorized(message),
        403 | 429 if rate_limited => {
            let wait = header("retry-after")
                .or_else(|| header("x-ratelimit-reset").map(|reset| reset - now()))
                .unwrap_or(60)
                .clamp(1, 3600);
            GithubError::RateLimited {
                message,
                retry_after: Duration::from_secs(wait as u64),
            }
        }
        404 => match lookup {
            Lookup::App => GithubError::AppNotFound(message),
            Lookup::Installation => {
                GithubError::NotFound(format!("installation not found: {message}"))
            }
            Lookup::Repository => GithubError::NotFound(format!("repository not found: {message}")),
            Lookup::Token => GithubError::NotFound(format!("token not found: {message}")),
        },
        422 => GithubError::Unprocessable(message),
        code => GithubError::Http {
            status: code,
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::keys::RsaKey;

    #[test]
    fn a_server_naming_thousands_of_permissions_and_repositories_grows_no_status_beyond_the_caps() {
        let long = "x".repeat(5_000);
        let permissions: serde_json::Map<String, Value> = (0..5_000)
            .map(|i| (format!("perm-{i}"), Value::from(long.as_str())))
            .chain([("nested".to_string(), json!({"a": "b"}))])
            .collect();
        let map = string_map(&Value::Object(permissions));
        assert_eq!(map.len(), MAX_PERMISSIONS);
        assert!(map.values().all(|v| v.chars().count() == MAX_NAME_CHARS));
        let repositories: Vec<Value> = (0..5_000)
            .map(|i| json!({"name": format!("{long}-{i}")}))
            .chain([json!({"id": 1}), json!("app")])
            .collect();
        let names = repository_names(&Value::Array(repositories));
        assert_eq!(names.len(), MAX_REPOSITORIES);
        assert!(names.iter().all(|n| n.chars().count() == MAX_NAME_CHARS));
    }

    #[test]
    fn github_s_own_answer_is_kept_as_it_is() {
        let map = string_map(&json!({"contents": "read", "metadata": "read"}));
        assert_eq!(map.get("contents").map(String::as_str), Some("read"));
        assert_eq!(map.len(), 2);
        let names = repository_names(&json!([{"name": "app", "id": 1}, {"name": "lib"}]));
        assert_eq!(names, ["app", "lib"]);
    }

    fn app(key: &RsaKey) -> App {
        let pem = key.private_pkcs8_pem().as_bytes();
        App::new(
            "https://ghe.example.com/api/v3",
            "42",
            EncodingKey::from_rsa_pem(pem).unwrap(),
            pem,
        )
    }

    fn claims(jwt: &str) -> Value {
        jsonwebtoken::dangerous::insecure_decode_claims(jwt).unwrap()
    }

    #[test]
    fn the_app_jwt_has_githubs_claims() {
        let key = RsaKey::generate();
        let jwt = GithubClient::new().app_jwt(&app(&key), 1_000_000).unwrap();
        assert_eq!(
            claims(&jwt),
            json!({"iat": 999_940, "exp": 1_000_540, "iss": 42})
        );
    }

    #[test]
    fn the_app_jwt_is_reused_until_a_minute_before_it_expires() {
        let key = RsaKey::generate();
        let client = GithubClient::new();
        let first = client.app_jwt(&app(&key), 1_000_000).unwrap();
        assert_eq!(client.app_jwt(&app(&key), 1_000_470).unwrap(), first);
        let renewed = client.app_jwt(&app(&key), 1_000_481).unwrap();
        assert_ne!(renewed, first);
        assert_eq!(claims(&renewed)["iat"], 1_000_421);
    }

    #[test]
    fn a_different_key_for_the_same_app_gets_its_own_jwt() {
        let (a, b) = (RsaKey::generate(), RsaKey::generate());
        let client = GithubClient::new();
        let first = client.app_jwt(&app(&a), 1_000_000).unwrap();
        assert_ne!(client.app_jwt(&app(&b), 1_000_000).unwrap(), first);
    }
}
