//! What tests configure (the public `*Spec` types) and what the simulator keeps (`State`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::faults::{FaultQueue, RateWindow};
use crate::keys::RsaKey;

/// Permission name → level (`"read"`, `"write"` or `"admin"`), as in GitHub's JSON.
pub type Permissions = BTreeMap<String, String>;

/// Builds [`Permissions`] from pairs: `perms([("contents", "read")])`.
pub fn perms<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Permissions {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The rank of a permission level; `None` for anything GitHub would not accept.
pub(crate) fn level_rank(level: &str) -> Option<u8> {
    match level {
        "read" => Some(1),
        "write" => Some(2),
        "admin" => Some(3),
        _ => None,
    }
}

/// Whether an installation or user account is an organization or a personal account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountType {
    /// An organization (`/orgs/{org}/installation` finds it).
    Organization,
    /// A personal account (only `/users/{username}/installation` finds it).
    User,
}

impl AccountType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Organization => "Organization",
            Self::User => "User",
        }
    }
}

/// Which of the owner's repositories an installation can reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoSelection {
    /// Every repository of the owner, including ones added later.
    All,
    /// Only these repository names.
    Selected(Vec<String>),
}

/// A user's role on a repository, from least to most powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `pull`.
    Read,
    /// `pull`, `triage`.
    Triage,
    /// `pull`, `triage`, `push`.
    Write,
    /// `pull`, `triage`, `push`, `maintain`.
    Maintain,
    /// Everything.
    Admin,
}

/// A GitHub App to register in the simulator.
#[derive(Clone, Debug)]
pub struct AppSpec {
    /// The numeric App ID: the JWT's `iss`.
    pub id: u64,
    /// URL-friendly name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// The client ID, also accepted as the JWT's `iss` (as GitHub does).
    pub client_id: String,
    /// The public key as PKCS#1 `RSAPublicKey` DER; JWTs must verify against it.
    pub public_key_der: Vec<u8>,
}

impl AppSpec {
    /// An app whose JWTs must be signed by `key`.
    pub fn new(id: u64, slug: &str, key: &RsaKey) -> Self {
        Self {
            id,
            slug: slug.to_string(),
            name: slug.to_string(),
            client_id: format!("Iv1.{id:016x}"),
            public_key_der: key.public_pkcs1_der().to_vec(),
        }
    }
}

/// An installation of an app on an owner (organization or user).
#[derive(Clone, Debug)]
pub struct InstallationSpec {
    /// The installed app.
    pub app_id: u64,
    /// The owner's login; created as an organization if the simulator does not know it.
    pub owner: String,
    /// What the installation was granted; `metadata: read` is always added, as on GitHub.
    pub permissions: Permissions,
    /// Which repositories it can reach.
    pub repositories: RepoSelection,
    /// A suspended installation cannot mint tokens and its tokens stop working.
    pub suspended: bool,
}

impl InstallationSpec {
    /// All repositories, `contents: write`, `metadata: read`.
    pub fn new(app_id: u64, owner: &str) -> Self {
        Self {
            app_id,
            owner: owner.to_string(),
            permissions: perms([("contents", "write"), ("metadata", "read")]),
            repositories: RepoSelection::All,
            suspended: false,
        }
    }

    /// Replaces the granted permissions.
    pub fn permissions<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.permissions = perms(pairs);
        self
    }

    /// Restricts the installation to these repository names (created if missing).
    pub fn repositories(mut self, names: &[&str]) -> Self {
        self.repositories = RepoSelection::Selected(names.iter().map(|n| n.to_string()).collect());
        self
    }
}

/// How the simulator starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Lifetime of installation tokens; GitHub's is one hour.
    pub token_lifetime: Duration,
    /// Delay added before answering every request.
    pub latency: Duration,
    /// Primary rate limit per hour (`x-ratelimit-limit`); GitHub's is 5000.
    pub rate_limit: u32,
    /// The account signed in to the browser that registers an app from a manifest without an
    /// organization: the new app's owner.
    pub manifest_user: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(3_600),
            latency: Duration::ZERO,
            rate_limit: 5_000,
            manifest_user: "octocat".into(),
        }
    }
}

/// An installation token the simulator issued, as tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The opaque token.
    pub token: String,
    /// The installation it acts as.
    pub installation_id: u64,
    /// The app of that installation.
    pub app_id: u64,
    /// Repository names it can reach; `None` for all of the installation's.
    pub repositories: Option<Vec<String>>,
    /// What it was granted.
    pub permissions: Permissions,
    /// Unix seconds, by the simulator's clock.
    pub issued_at: i64,
    /// Unix seconds, by the simulator's clock.
    pub expires_at: i64,
    /// Revoked with `DELETE /installation/token`.
    pub revoked: bool,
}

pub(crate) struct Owner {
    pub(crate) id: u64,
    pub(crate) login: String,
    pub(crate) kind: AccountType,
}

pub(crate) struct Repo {
    pub(crate) id: u64,
    /// Lower-cased owner login.
    pub(crate) owner: String,
    pub(crate) name: String,
}

pub(crate) struct Installation {
    pub(crate) id: u64,
    pub(crate) app_id: u64,
    /// Lower-cased owner login.
    pub(crate) owner: String,
    pub(crate) permissions: Permissions,
    pub(crate) selection: RepoSelection,
    pub(crate) suspended: bool,
    pub(crate) created_at: i64,
}

pub(crate) struct User {
    pub(crate) id: u64,
    pub(crate) login: String,
    /// Repository id → role.
    pub(crate) roles: BTreeMap<u64, Role>,
}

/// Everything the simulator knows, behind one mutex.
pub(crate) struct State {
    pub(crate) config: SimConfig,
    pub(crate) clock_offset: i64,
    pub(crate) apps: BTreeMap<u64, AppSpec>,
    pub(crate) owners: BTreeMap<String, Owner>,
    pub(crate) repos: Vec<Repo>,
    pub(crate) installations: BTreeMap<u64, Installation>,
    /// User token → user.
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) tokens: Vec<TokenInfo>,
    pub(crate) calls: BTreeMap<&'static str, u64>,
    pub(crate) mints: u64,
    pub(crate) revokes: u64,
    /// Distinct App JWTs accepted since the counters were reset.
    pub(crate) jwts: std::collections::BTreeSet<String>,
    pub(crate) faults: FaultQueue,
    pub(crate) rate: RateWindow,
    /// Apps created from a manifest whose conversion code was not exchanged yet, by code.
    pub(crate) manifest_codes: BTreeMap<String, Pending>,
    next_id: u64,
}

impl State {
    pub(crate) fn new(config: SimConfig) -> Self {
        let rate = RateWindow::new(config.rate_limit);
        Self {
            config,
            clock_offset: 0,
            apps: BTreeMap::new(),
            owners: BTreeMap::new(),
            repos: Vec::new(),
            installations: BTreeMap::new(),
            users: BTreeMap::new(),
            tokens: Vec::new(),
            calls: BTreeMap::new(),
            mints: 0,
            revokes: 0,
            jwts: Default::default(),
            faults: FaultQueue::default(),
            rate,
            manifest_codes: BTreeMap::new(),
            next_id: 1_000,
        }
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The simulator's clock: the host's, plus whatever tests advanced it by.
    pub(crate) fn now(&self) -> i64 {
        super::time::unix_now() + self.clock_offset
    }

    /// The owner's key, creating the owner if needed.
    pub(crate) fn ensure_owner(&mut self, login: &str, kind: AccountType) -> String {
        let key = login.to_ascii_lowercase();
        if !self.owners.contains_key(&key) {
            let id = self.next_id();
            let login = login.to_string();
            self.owners.insert(key.clone(), Owner { id, login, kind });
        }
        key
    }

    /// The repository `owner/name`, case-insensitively.
    pub(crate) fn repo(&self, owner: &str, name: &str) -> Option<&Repo> {
        self.repos
            .iter()
            .find(|r| r.owner.eq_ignore_ascii_case(owner) && r.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn ensure_repo(&mut self, owner: &str, name: &str) -> u64 {
        if let Some(repo) = self.repo(owner, name) {
            return repo.id;
        }
        let owner = self.ensure_owner(owner, AccountType::Organization);
        let id = self.next_id();
        let name = name.to_string();
        self.repos.push(Repo { id, owner, name });
        id
    }

    /// Whether the installation can reach the repository.
    pub(crate) fn covers(inst: &Installation, repo: &Repo) -> bool {
        repo.owner == inst.owner
            && match &inst.selection {
                RepoSelection::All => true,
                RepoSelection::Selected(names) => {
                    names.iter().any(|n| n.eq_ignore_ascii_case(&repo.name))
                }
            }
    }

    /// The repositories an installation can reach, in creation order.
    pub(crate) fn installation_repos(&self, inst: &Installation) -> Vec<&Repo> {
        self.repos
            .iter()
            .filter(|r| Self::covers(inst, r))
            .collect()
    }

    /// A token that is known, unrevoked, unexpired and whose installation is active.
    pub(crate) fn live_token(&self, token: &str) -> Option<&TokenInfo> {
        let now = self.now();
        self.tokens.iter().find(|t| {
            t.token == token
                && !t.revoked
                && t.expires_at > now
                && self
                    .installations
                    .get(&t.installation_id)
                    .is_some_and(|i| !i.suspended)
        })
    }

    /// The repositories a token can reach: its own list, within what the installation reaches.
    pub(crate) fn token_repos(&self, token: &TokenInfo) -> Vec<&Repo> {
        let Some(inst) = self.installations.get(&token.installation_id) else {
            return Vec::new();
        };
        self.installation_repos(inst)
            .into_iter()
            .filter(|r| match &token.repositories {
                None => true,
                Some(names) => names.iter().any(|n| n.eq_ignore_ascii_case(&r.name)),
            })
            .collect()
    }
}

/// An app created from a manifest whose code was not exchanged yet.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) app_id: u64,
    pub(crate) owner: String,
    pub(crate) owner_type: AccountType,
    pub(crate) pem: String,
    pub(crate) client_secret: String,
    pub(crate) webhook_secret: Option<String>,
    pub(crate) permissions: serde_json::Value,
    pub(crate) created_at: i64,
}
