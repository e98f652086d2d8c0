//! [`SimHandle`]: what tests do to a running simulator — set up apps and repositories, change
//! behaviour, inject faults — and what they read back: counters and issued tokens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::faults::{Down, Fault, FaultRates};
use super::model::{
    AccountType, AppSpec, Installation, InstallationSpec, Permissions, RepoSelection, Role,
    TokenInfo, User,
};
use super::server::Shared;

/// A cheap, cloneable handle on a running simulator's state.
#[derive(Clone)]
pub struct SimHandle {
    pub(crate) shared: Arc<Shared>,
}

impl SimHandle {
    // ---- world ----

    /// Registers an app; returns its id.
    pub fn add_app(&self, spec: AppSpec) -> u64 {
        let id = spec.id;
        self.shared.lock().apps.insert(id, spec);
        id
    }

    /// Creates an owner of the given type (owners referenced elsewhere default to organizations).
    pub fn add_owner(&self, login: &str, kind: AccountType) {
        let mut state = self.shared.lock();
        let key = state.ensure_owner(login, kind);
        if let Some(owner) = state.owners.get_mut(&key) {
            owner.kind = kind;
        }
    }

    /// Creates the repository `owner/name` (and the owner if needed); returns its id.
    pub fn add_repo(&self, owner: &str, name: &str) -> u64 {
        self.shared.lock().ensure_repo(owner, name)
    }

    /// Installs an app; returns the installation id. Selected repositories are created if
    /// missing, and `metadata: read` is always granted.
    pub fn add_installation(&self, spec: InstallationSpec) -> u64 {
        let mut state = self.shared.lock();
        let owner = state.ensure_owner(&spec.owner, AccountType::Organization);
        if let RepoSelection::Selected(names) = &spec.repositories {
            for name in names {
                state.ensure_repo(&spec.owner, name);
            }
        }
        let mut permissions = spec.permissions;
        permissions
            .entry("metadata".to_string())
            .or_insert_with(|| "read".to_string());
        let id = state.next_id();
        let created_at = state.now();
        let installation = Installation {
            id,
            app_id: spec.app_id,
            owner,
            permissions,
            selection: spec.repositories,
            suspended: spec.suspended,
            created_at,
        };
        state.installations.insert(id, installation);
        id
    }

    /// Changes what an installation was granted (as when an owner accepts new permissions).
    pub fn set_installation_permissions(&self, id: u64, permissions: Permissions) {
        if let Some(inst) = self.shared.lock().installations.get_mut(&id) {
            inst.permissions = permissions;
        }
    }

    /// Changes which repositories an installation reaches; existing tokens follow.
    pub fn set_installation_repositories(&self, id: u64, selection: RepoSelection) {
        if let Some(inst) = self.shared.lock().installations.get_mut(&id) {
            inst.selection = selection;
        }
    }

    /// Suspends or unsuspends an installation; a suspended one mints nothing and its tokens fail.
    pub fn set_installation_suspended(&self, id: u64, suspended: bool) {
        if let Some(inst) = self.shared.lock().installations.get_mut(&id) {
            inst.suspended = suspended;
        }
    }

    /// Uninstalls: lookups answer 404 and its tokens stop working. `false` if unknown.
    pub fn remove_installation(&self, id: u64) -> bool {
        self.shared.lock().installations.remove(&id).is_some()
    }

    /// Registers a user and the token (a PAT) they authenticate with.
    pub fn add_user(&self, token: &str, login: &str) {
        let mut state = self.shared.lock();
        let id = state.next_id();
        let user = User {
            id,
            login: login.to_string(),
            roles: BTreeMap::new(),
        };
        state.users.insert(token.to_string(), user);
    }

    /// Gives the user holding `token` a role on `owner/repo` (both created if missing).
    pub fn grant(&self, token: &str, owner: &str, repo: &str, role: Role) {
        let mut state = self.shared.lock();
        let repo_id = state.ensure_repo(owner, repo);
        if !state.users.contains_key(token) {
            let id = state.next_id();
            let login = format!("user-{id}");
            let roles = BTreeMap::new();
            state
                .users
                .insert(token.to_string(), User { id, login, roles });
        }
        if let Some(user) = state.users.get_mut(token) {
            user.roles.insert(repo_id, role);
        }
    }

    // ---- behaviour ----

    /// Lifetime of tokens minted from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().config.token_lifetime = lifetime;
    }

    /// Delay added before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().config.latency = latency;
    }

    /// The primary rate limit per hour; beyond it requests get 403 with `x-ratelimit-remaining: 0`.
    pub fn set_rate_limit(&self, limit: u32) {
        self.shared.lock().rate.limit = limit;
    }

    /// Moves the simulator's clock forward: tokens expire, JWTs are judged by the new time.
    pub fn advance_clock(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        let mut state = self.shared.lock();
        state.clock_offset = state.clock_offset.saturating_add(secs);
    }

    /// The simulator's clock, in Unix seconds.
    pub fn now(&self) -> i64 {
        self.shared.lock().now()
    }

    /// The next `times` requests, to any route, fail with `fault`.
    pub fn fail_next(&self, times: u32, fault: Fault) {
        self.shared.lock().faults.push(None, fault, times);
    }

    /// The next `times` requests to `route` (a [`route`](super::route) constant) fail with
    /// `fault`. Faults apply in the order they were queued.
    pub fn fail_next_on(&self, route: &str, times: u32, fault: Fault) {
        self.shared.lock().faults.push(Some(route), fault, times);
    }

    /// From now on every request fails at random with these rates (after queued faults).
    pub fn set_fault_rates(&self, rates: FaultRates) {
        self.shared.lock().faults.set_rates(rates);
    }

    /// Drops every queued fault and the random fault rates.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Uses left across all queued faults.
    pub fn pending_faults(&self) -> u64 {
        self.shared.lock().faults.pending()
    }

    /// Flips the "down" switch and returns once it shows: for [`Down::Refuse`] when new
    /// connections are refused, for the others when they are accepted again.
    pub async fn set_down(&self, down: Down) {
        self.shared.down.send_replace(down);
        let want_open = down != Down::Refuse;
        for addr in &self.shared.addrs {
            // At most five seconds; the listeners normally follow within a scheduler tick.
            for _ in 0..250 {
                let open = tokio::net::TcpStream::connect(addr).await.is_ok();
                if open == want_open {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// The position of the "down" switch.
    pub fn down(&self) -> Down {
        *self.shared.down.borrow()
    }

    // ---- counters ----

    /// Requests received on a route (a [`route`](super::route) constant), including failed ones.
    pub fn calls(&self, route: &str) -> u64 {
        self.shared.lock().calls.get(route).copied().unwrap_or(0)
    }

    /// Requests received on every route.
    pub fn all_calls(&self) -> BTreeMap<String, u64> {
        let state = self.shared.lock();
        state
            .calls
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    /// Requests received in total.
    pub fn total_calls(&self) -> u64 {
        self.shared.lock().calls.values().sum()
    }

    /// Tokens issued (successful `201`s of the access-token route).
    pub fn mint_count(&self) -> u64 {
        self.shared.lock().mints
    }

    /// Tokens revoked (successful `204`s of `DELETE /installation/token`).
    pub fn revoke_count(&self) -> u64 {
        self.shared.lock().revokes
    }

    /// Zeroes the call, mint and revoke counters (issued tokens are kept).
    pub fn reset_counters(&self) {
        let mut state = self.shared.lock();
        state.calls.clear();
        state.mints = 0;
        state.revokes = 0;
        state.jwts.clear();
    }

    /// Distinct App JWTs the simulator accepted since the counters were reset.
    pub fn distinct_jwts(&self) -> u64 {
        self.shared.lock().jwts.len() as u64
    }

    /// Every token issued, oldest first.
    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.shared.lock().tokens.clone()
    }

    /// Tokens that still work: unrevoked, unexpired, of an active installation.
    pub fn live_tokens(&self) -> Vec<TokenInfo> {
        let state = self.shared.lock();
        let live = |t: &&TokenInfo| state.live_token(&t.token).is_some();
        state.tokens.iter().filter(live).cloned().collect()
    }

    /// What the simulator knows about a token it issued.
    pub fn token(&self, token: &str) -> Option<TokenInfo> {
        let state = self.shared.lock();
        state.tokens.iter().find(|t| t.token == token).cloned()
    }

    /// Whether a token would be accepted now.
    pub fn is_live(&self, token: &str) -> bool {
        self.shared.lock().live_token(token).is_some()
    }
}
