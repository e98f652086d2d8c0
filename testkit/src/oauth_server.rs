//! A standards OAuth 2.0 authorization server as a local peer for tests: panva's oidc-provider
//! (from npm, pinned by `scripts/oauth-server`), run by `scripts/oauth-server.d/server.mjs` on a
//! free port of 127.0.0.1, killed on drop. It grants client credentials, refresh tokens with
//! rotation and reuse detection, and the device grant (RFC 8628), whose user codes a test
//! approves through the server's test hook instead of a browser.

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http::loopback_request;

/// The environment variable that names the server's launcher (`scripts/test` sets it).
pub const OAUTH_SERVER_ENV: &str = "PATCHBAY_OAUTH_SERVER";
/// How long the server may take to print that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One client the server knows.
#[derive(Clone, Debug)]
pub struct Client {
    /// `client_id`.
    pub id: &'static str,
    /// `client_secret`.
    pub secret: &'static str,
    /// How it authenticates at the token endpoint: `client_secret_basic` or
    /// `client_secret_post` (the server accepts only that one).
    pub method: &'static str,
}

/// A running authorization server.
pub struct OAuthServer {
    child: Child,
    url: String,
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OAuthServer {
    /// The launcher: `$PATCHBAY_OAUTH_SERVER`, else what `scripts/oauth-server` installed.
    pub fn binary() -> Option<PathBuf> {
        crate::peer::installed(OAUTH_SERVER_ENV, "oauth-server")
    }

    /// Starts the server with `clients` (each allowed every grant) and access tokens that live
    /// `access_token_ttl`; returns once it listens.
    pub async fn start(clients: &[Client], access_token_ttl: Duration) -> io::Result<Self> {
        let binary = Self::binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the OAuth server is not installed: run scripts/oauth-server, or set \
                     {OAUTH_SERVER_ENV}"
                ),
            )
        })?;
        let clients: Vec<_> = (clients.iter())
            .map(|c| {
                serde_json::json!({"client_id": c.id, "client_secret": c.secret,
                    "token_endpoint_auth_method": c.method})
            })
            .collect();
        let mut child = Command::new(&binary)
            .args(["--port", "0", "--access-token-ttl"])
            .arg(access_token_ttl.as_secs().max(1).to_string())
            .env(
                "OAUTH_SERVER_CLIENTS",
                serde_json::Value::from(clients).to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let server = |url| Self { child, url };
        match tokio::time::timeout(START_TIMEOUT, line).await {
            Ok(Ok(Ok(line))) if line.contains(" listening at ") => {
                let url = line.trim().rsplit(' ').next().unwrap_or_default();
                Ok(server(url.trim_end_matches('/').to_owned()))
            }
            other => {
                let mut s = server(String::new());
                let _ = s.child.kill();
                Err(io::Error::other(format!(
                    "the OAuth server did not start: {other:?}"
                )))
            }
        }
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }

    /// The device authorization endpoint (RFC 8628).
    pub fn device_authorization_url(&self) -> String {
        format!("{}/device/auth", self.url)
    }

    fn port(&self) -> io::Result<u16> {
        (self.url.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| io::Error::other("no port in the issuer"))
    }

    /// How many token requests of `grant_type` the server answered since it started, as
    /// `(granted, refused)`.
    pub async fn token_requests(&self, grant_type: &str) -> io::Result<(u64, u64)> {
        match loopback_request(self.port()?, "GET", "/test/stats", None).await {
            Some((200, body)) => {
                let stats: serde_json::Value =
                    serde_json::from_str(&body).map_err(io::Error::other)?;
                let of = &stats["token_requests"][grant_type];
                Ok((
                    of["ok"].as_u64().unwrap_or(0),
                    of["error"].as_u64().unwrap_or(0),
                ))
            }
            other => Err(io::Error::other(format!("GET /test/stats: {other:?}"))),
        }
    }

    /// Signs `account` in at the authorization URL `url` through the server's own pages, as a
    /// browser would, and returns where the server then redirects (the client's redirect URI
    /// with the code and state), without following it.
    pub async fn authorize(&self, url: &str, account: &str) -> io::Result<String> {
        let body = serde_json::json!({"url": url, "account": account});
        let hook = "/test/authorize";
        match loopback_request(self.port()?, "POST", hook, Some(&body.to_string())).await {
            Some((200, answer)) => {
                let answer: serde_json::Value =
                    serde_json::from_str(&answer).map_err(io::Error::other)?;
                (answer["location"].as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| io::Error::other(format!("no location in {answer}")))
            }
            other => Err(io::Error::other(format!("signing in at {url}: {other:?}"))),
        }
    }

    /// Approves every pending device code of `client_id` for `account`; `false` when none is
    /// pending yet.
    pub async fn approve_client(&self, client_id: &str, account: &str) -> io::Result<bool> {
        let body = serde_json::json!({"client_id": client_id, "account": account});
        let hook = "/test/device/approve";
        match loopback_request(self.port()?, "POST", hook, Some(&body.to_string())).await {
            Some((200, _)) => Ok(true),
            Some((404, _)) => Ok(false),
            other => Err(io::Error::other(format!(
                "approving for {client_id}: {other:?}"
            ))),
        }
    }

    /// Approves the pending device code `user_code` for `account`, as a person would in the
    /// browser.
    pub async fn approve(&self, user_code: &str, account: &str) -> io::Result<()> {
        let port = self.port()?;
        let body = serde_json::json!({"user_code": user_code, "account": account});
        match loopback_request(
            port,
            "POST",
            "/test/device/approve",
            Some(&body.to_string()),
        )
        .await
        {
            Some((200, _)) => Ok(()),
            other => Err(io::Error::other(format!(
                "approving {user_code}: {other:?}"
            ))),
        }
    }
}
