//! A GitHub REST API simulator for GitHub App clients, started from tests and the sandbox.
//!
//! ```text
//!   test ──SimHandle──▶ State (apps, owners, repos, installations, users, tokens, counters)
//!                         ▲
//!   client ──HTTP──▶ listener (github.com layout: /…  and /api/v3/…)
//!          ──HTTP──▶ listener (GHES layout: /api/v3/… only)
//! ```
//!
//! **Simulated**, as GitHub behaves where a GitHub App client cares:
//! - App JWTs (`Authorization: Bearer`): RS256 signature against the app's public key; `iss`
//!   (numeric App ID, as integer or string, or the client ID); integer `iat` at most 60 s in the
//!   future; integer `exp` in the future, at most 10 minutes after `iat` and after now. Failures
//!   are 401 with GitHub's messages; an `iss` naming no app is `404 Integration not found`.
//! - `GET /app`, `GET /app/installations`, `GET /app/installations/{installation_id}`,
//!   `GET /orgs/{org}/installation` (organizations only), `GET /users/{username}/installation`
//!   (any account), `GET /repos/{owner}/{repo}/installation`.
//! - `POST /app/installations/{installation_id}/access_tokens` with `repositories`,
//!   `repository_ids` and `permissions`: 422 for repositories the installation cannot reach and
//!   for permissions above its own, `metadata: read` added as GitHub does, opaque random tokens
//!   with a configurable lifetime, `expires_at` in RFC 3339.
//! - `DELETE /installation/token` (204, then the token is dead), `GET /installation/repositories`
//!   (what a token reaches), `GET /repos/{owner}/{repo}` (with a user token: `permissions` from
//!   the user's role; with an installation token: only repositories it reaches), `GET /user`.
//! - Registering an app from a manifest: the browser's `POST /settings/apps/new?state=...`
//!   (or `/organizations/{org}/settings/apps/new`) with a `manifest` form field creates the app
//!   (confirmed at once) and redirects to its `redirect_url` with a one-time `code`;
//!   `POST /app-manifests/{code}/conversions` gives its id, secrets and private key, once,
//!   within an hour. The app then works like one a test added.
//! - Rate-limit headers on every answer and a primary limit per hour; `Date` by the
//!   simulator's clock, which tests can advance.
//! - Faults: queued 5xx, primary and secondary rate limits (403/429 with `retry-after`,
//!   `x-ratelimit-remaining: 0`, `x-ratelimit-reset`), dropped connections; latency; a "down"
//!   switch (refused connections, 503, or hanging requests). Every request is counted per route.
//!
//! **Not simulated**: anything outside the routes above (unknown paths are 404), pagination
//! (lists come in one page), conditional requests and ETags, webhooks, OAuth and user-to-server
//! tokens, fine-grained PAT rules, repository contents, HTTP/2 and TLS, and per-credential
//! rate-limit buckets (one bucket for everyone).

mod auth;
mod faults;
mod handle;
mod json;
mod manifests;
mod model;
mod reply;
mod routes;
mod server;
mod time;
mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use auth::{SignError, app_jwt, sign_jwt};
pub use faults::{Down, Fault, FaultRates};
pub use handle::SimHandle;
pub use model::{
    AccountType, AppSpec, InstallationSpec, Permissions, RepoSelection, Role, SimConfig, TokenInfo,
    perms,
};

use server::{Layout, Shared};

/// Route names for [`SimHandle::calls`] and [`SimHandle::fail_next_on`]: GitHub's templates.
pub mod route {
    /// `GET /app`.
    pub const GET_APP: &str = "GET /app";
    /// `GET /app/installations`.
    pub const LIST_INSTALLATIONS: &str = "GET /app/installations";
    /// `GET /app/installations/{installation_id}`.
    pub const GET_INSTALLATION: &str = "GET /app/installations/{installation_id}";
    /// `POST /app/installations/{installation_id}/access_tokens`: minting.
    pub const CREATE_TOKEN: &str = "POST /app/installations/{installation_id}/access_tokens";
    /// `GET /orgs/{org}/installation`.
    pub const ORG_INSTALLATION: &str = "GET /orgs/{org}/installation";
    /// `GET /users/{username}/installation`.
    pub const USER_INSTALLATION: &str = "GET /users/{username}/installation";
    /// `GET /repos/{owner}/{repo}/installation`.
    pub const REPO_INSTALLATION: &str = "GET /repos/{owner}/{repo}/installation";
    /// `DELETE /installation/token`: revocation.
    pub const REVOKE_TOKEN: &str = "DELETE /installation/token";
    /// `GET /installation/repositories`.
    pub const INSTALLATION_REPOS: &str = "GET /installation/repositories";
    /// `GET /repos/{owner}/{repo}`.
    pub const GET_REPO: &str = "GET /repos/{owner}/{repo}";
    /// `GET /user`.
    pub const GET_USER: &str = "GET /user";
    /// `POST /settings/apps/new` and `POST /organizations/{org}/settings/apps/new`: a browser
    /// registering an app from a manifest.
    pub const MANIFEST_FORM: &str = "POST /settings/apps/new";
    /// `POST /app-manifests/{code}/conversions`.
    pub const CONVERT_MANIFEST: &str = "POST /app-manifests/{code}/conversions";
    /// Any request that matched no route.
    pub const UNMATCHED: &str = "unmatched";
}

/// A running simulator. Dereferences to its [`SimHandle`]; stops on drop or [`Self::shutdown`].
pub struct GithubSim {
    handle: SimHandle,
    addr: SocketAddr,
    ghes_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl GithubSim {
    /// Starts listening on two random ports of 127.0.0.1 (github.com and GHES layouts).
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::start_with(config, None).await
    }

    /// Like [`Self::start`], but speaking HTTPS with `tls` (a certificate for `127.0.0.1`
    /// from [`crate::tls::TestCa`]): a GitHub Enterprise Server behind a private CA.
    pub async fn start_tls(
        config: SimConfig,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        Self::start_with(config, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(
        config: SimConfig,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let mut listeners = Vec::new();
        for layout in [Layout::DotCom, Layout::Enterprise] {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            listeners.push((listener.local_addr()?, listener, layout));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(model::State::new(config)),
            down: watch::Sender::new(Down::Up),
            addrs: listeners.iter().map(|(addr, ..)| *addr).collect(),
            tls,
        });
        let (shutdown, _) = watch::channel(false);
        let tasks = listeners
            .into_iter()
            .map(|(addr, listener, layout)| {
                let receiver = shutdown.subscribe();
                let serving = server::accept_loop(listener, addr, layout, shared.clone(), receiver);
                tokio::spawn(serving)
            })
            .collect();
        let (addr, ghes_addr) = (shared.addrs[0], shared.addrs[1]);
        Ok(Self {
            handle: SimHandle { shared },
            addr,
            ghes_addr,
            shutdown,
            tasks,
        })
    }

    /// The API base as on github.com (`https://api.github.com` → `http://127.0.0.1:PORT`).
    /// The same listener also answers under `/api/v3`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    fn scheme(&self) -> &'static str {
        if self.handle.shared.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// A GitHub Enterprise Server URL (`http://127.0.0.1:PORT`, another port): its API lives
    /// only under `/api/v3`, so a client that forgets the prefix gets 404s.
    pub fn ghes_url(&self) -> String {
        format!("{}://{}", self.scheme(), self.ghes_addr)
    }

    /// The GHES API base: [`Self::ghes_url`] + `/api/v3`.
    pub fn ghes_api_url(&self) -> String {
        format!("{}/api/v3", self.ghes_url())
    }

    /// A cloneable handle, for tasks that outlive a borrow of the simulator.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// Stops listening, closes open connections and waits for the listeners to finish.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl std::ops::Deref for GithubSim {
    type Target = SimHandle;

    fn deref(&self) -> &SimHandle {
        &self.handle
    }
}

impl Drop for GithubSim {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}
