//! A GitLab simulator for the parts patchbay uses, with GitLab's quirks:
//!
//! - `POST /oauth/token` (Doorkeeper), `grant_type=refresh_token`: the client authenticates with
//!   HTTP Basic or in the form; refresh tokens are single-use; a refresh revokes the access
//!   token it replaces; presenting a used refresh token again revokes the whole grant (every
//!   access and refresh token of the family) and answers `invalid_grant`.
//! - `GET /api/v4/user` with a bearer token.
//! - `POST /api/v4/projects/{id or url-encoded path}/access_tokens` and
//!   `POST /api/v4/groups/{id or path}/access_tokens` with a user's token: the user must be a
//!   Maintainer (or Owner) there, `access_level` may not exceed theirs, `expires_at` (a date)
//!   must lie from tomorrow to a year ahead; answers the token once (`glpat-...`).
//! - `DELETE /api/v4/personal_access_tokens/self` with `PRIVATE-TOKEN` or a bearer token:
//!   revokes the token that asks (204).
//! - `GET /api/v4/projects/{id or path}`: 200 for a token that reaches the project (a member's
//!   OAuth token; a project token of that project; a group token of its group), 404 otherwise.
//!
//! Tests seed users' grants ([`GitlabSim::grant`]) as a sign-in would leave them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::http::{Answer, Asked, Handler, Server};

/// How long OAuth access tokens live, as on GitLab.com.
pub const ACCESS_TOKEN_LIFETIME: i64 = 7200;

/// A role in a project or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// 10.
    Guest = 10,
    /// 20.
    Reporter = 20,
    /// 30.
    Developer = 30,
    /// 40.
    Maintainer = 40,
    /// 50.
    Owner = 50,
}

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// A user's OAuth access token, of grant family `family`.
    OAuth { family: u64 },
    /// A project or group access token.
    Resource {
        /// `projects` or `groups`.
        of: &'static str,
        /// The project's or group's path.
        path: String,
        /// Its id, for revocation.
        id: u64,
        /// Its role.
        level: u16,
        /// Its expiry date.
        expires_at: String,
    },
}

#[derive(Clone, Debug)]
struct Token {
    user: String,
    kind: Kind,
    revoked: bool,
}

#[derive(Clone, Debug)]
struct Refresh {
    user: String,
    family: u64,
    used: bool,
    revoked: bool,
}

#[derive(Default)]
struct State {
    client: (String, String),
    /// Project path → members' roles.
    projects: BTreeMap<String, BTreeMap<String, Role>>,
    /// Group path → members' roles (a project `group/app` is in group `group`).
    groups: BTreeMap<String, BTreeMap<String, Role>>,
    tokens: BTreeMap<String, Token>,
    refresh_tokens: BTreeMap<String, Refresh>,
    next: u64,
    refreshes: u64,
    resource_tokens: u64,
    /// Today, as `YYYY-MM-DD`, for expiry checks.
    today: String,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn secret(&mut self, prefix: &str) -> String {
        let mut bytes = [0u8; 20];
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        let id = self.id();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}{id}{hex}")
    }

    fn live(&self, token: &str) -> Option<&Token> {
        self.tokens.get(token).filter(|t| !t.revoked)
    }

    fn revoke_family(&mut self, family: u64) {
        for t in self.tokens.values_mut() {
            if t.kind == (Kind::OAuth { family }) {
                t.revoked = true;
            }
        }
        for r in self.refresh_tokens.values_mut() {
            if r.family == family {
                r.revoked = true;
            }
        }
    }
}

/// The running simulator.
pub struct GitlabSim {
    server: Server,
    state: Arc<Mutex<State>>,
}

fn error(status: u16, code: &str, description: &str) -> Answer {
    Answer::json(
        status,
        json!({"error": code, "error_description": description}),
    )
}

fn message(status: u16, text: &str) -> Answer {
    Answer::json(status, json!({"message": text}))
}

impl GitlabSim {
    /// A GitLab with one OAuth application `client_id` / `client_secret`; `today` (a date,
    /// `YYYY-MM-DD`) bounds access token expiry dates.
    pub async fn start(client_id: &str, client_secret: &str, today: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            client: (client_id.to_owned(), client_secret.to_owned()),
            today: today.to_owned(),
            ..State::default()
        }));
        let shared = state.clone();
        let handler: Handler = Arc::new(move |asked| {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            answer(&mut state, asked)
        });
        Self {
            server: Server::start(handler).await,
            state,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:PORT`, as a connection's `serverUrl` takes it.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Creates project `path` (`group/name`) with `members`; its group too.
    pub fn add_project(&self, path: &str, members: &[(&str, Role)]) {
        let members: BTreeMap<_, _> = members.iter().map(|(u, r)| (u.to_string(), *r)).collect();
        let mut state = self.lock();
        if let Some((group, _)) = path.rsplit_once('/') {
            state.groups.entry(group.to_owned()).or_default();
        }
        state.projects.insert(path.to_owned(), members);
    }

    /// Makes `user` a member of group `path` with `role`.
    pub fn add_group_member(&self, path: &str, user: &str, role: Role) {
        let mut state = self.lock();
        state
            .groups
            .entry(path.to_owned())
            .or_default()
            .insert(user.to_owned(), role);
    }

    /// `user`'s grant, as signing in leaves it: a refresh token.
    pub fn grant(&self, user: &str) -> String {
        let mut state = self.lock();
        let family = state.id();
        let refresh = state.secret("glrt-");
        state.refresh_tokens.insert(
            refresh.clone(),
            Refresh {
                user: user.to_owned(),
                family,
                used: false,
                revoked: false,
            },
        );
        refresh
    }

    /// Whether `token` (any kind) works.
    pub fn is_live(&self, token: &str) -> bool {
        self.lock().live(token).is_some()
    }

    /// How many refreshes were granted.
    pub fn refreshes(&self) -> u64 {
        self.lock().refreshes
    }

    /// How many project and group access tokens were created.
    pub fn resource_tokens(&self) -> u64 {
        self.lock().resource_tokens
    }

    /// The live project and group access tokens: `(path, role, expiry date)`.
    pub fn live_resource_tokens(&self) -> Vec<(String, u16, String)> {
        let state = self.lock();
        (state.tokens.values())
            .filter(|t| !t.revoked)
            .filter_map(|t| match &t.kind {
                Kind::Resource {
                    path,
                    level,
                    expires_at,
                    ..
                } => Some((path.clone(), *level, expires_at.clone())),
                Kind::OAuth { .. } => None,
            })
            .collect()
    }
}

fn answer(state: &mut State, asked: &Asked) -> Answer {
    let path = asked.path.as_str();
    match (asked.method.as_str(), path) {
        ("POST", "/oauth/token") => token_endpoint(state, asked),
        ("GET", "/api/v4/user") => match caller(state, asked) {
            Some(t) => Answer::json(200, json!({"id": 1, "username": t.user})),
            None => message(401, "401 Unauthorized"),
        },
        ("DELETE", "/api/v4/personal_access_tokens/self") => {
            let token = asked
                .header("private-token")
                .or(asked.bearer())
                .map(str::to_owned);
            match token.and_then(|t| state.tokens.get_mut(&t).filter(|t| !t.revoked)) {
                Some(t) if matches!(t.kind, Kind::Resource { .. }) => {
                    t.revoked = true;
                    Answer {
                        status: 204,
                        headers: Vec::new(),
                        body: Vec::new(),
                    }
                }
                Some(_) => message(400, "400 Bad request - only personal access tokens"),
                None => message(401, "401 Unauthorized"),
            }
        }
        _ => resource_route(state, asked),
    }
}

/// The live token of a request (`PRIVATE-TOKEN` or bearer).
fn caller(state: &State, asked: &Asked) -> Option<Token> {
    let token = asked.header("private-token").or(asked.bearer())?;
    state.live(token).cloned()
}

fn token_endpoint(state: &mut State, asked: &Asked) -> Answer {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&asked.body).into_owned().collect();
    let client = asked.basic().or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    if client.as_ref() != Some(&state.client) {
        return error(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    let invalid = || {
        error(
            400,
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
        )
    };
    let Some(presented) = form.get("refresh_token") else {
        return invalid();
    };
    let Some(grant) = state.refresh_tokens.get(presented).cloned() else {
        return invalid();
    };
    if grant.revoked {
        return invalid();
    }
    if grant.used {
        // Reuse detection: the whole grant goes.
        state.revoke_family(grant.family);
        return invalid();
    }
    if let Some(r) = state.refresh_tokens.get_mut(presented) {
        r.used = true;
    }
    // Doorkeeper revokes the access token the refresh replaces.
    for t in state.tokens.values_mut() {
        if t.kind
            == (Kind::OAuth {
                family: grant.family,
            })
        {
            t.revoked = true;
        }
    }
    let access = state.secret("gloas-");
    let refresh = state.secret("glrt-");
    state.tokens.insert(
        access.clone(),
        Token {
            user: grant.user.clone(),
            kind: Kind::OAuth {
                family: grant.family,
            },
            revoked: false,
        },
    );
    state.refresh_tokens.insert(
        refresh.clone(),
        Refresh {
            user: grant.user,
            family: grant.family,
            used: false,
            revoked: false,
        },
    );
    state.refreshes += 1;
    Answer::json(
        200,
        json!({"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME,
            "refresh_token": refresh, "scope": "api read_user", "created_at": 0}),
    )
}

/// `/api/v4/{projects|groups}/{id}[/access_tokens]`.
fn resource_route(state: &mut State, asked: &Asked) -> Answer {
    let rest = asked.path.strip_prefix("/api/v4/").unwrap_or_default();
    let mut parts = rest.splitn(3, '/');
    let (of, id, tail) = (parts.next(), parts.next(), parts.next());
    let of: &'static str = match of {
        Some("projects") => "projects",
        Some("groups") => "groups",
        _ => return message(404, "404 Not Found"),
    };
    let Some(path) = id.map(|i| {
        form_urlencoded::parse(format!("p={i}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }) else {
        return message(404, "404 Not Found");
    };
    let Some(caller) = caller(state, asked) else {
        return message(401, "401 Unauthorized");
    };
    let members = match of {
        "projects" => state.projects.get(&path).cloned(),
        _ => state.groups.get(&path).cloned(),
    };
    let Some(members) = members else {
        return message(
            404,
            &format!(
                "404 {} Not Found",
                if of == "projects" { "Project" } else { "Group" }
            ),
        );
    };
    let group_of = |p: &str| p.rsplit_once('/').map(|(g, _)| g.to_owned());
    let role = match &caller.kind {
        Kind::OAuth { .. } => members
            .get(&caller.user)
            .copied()
            .map(|r| r as u16)
            .or_else(|| {
                (of == "projects")
                    .then(|| group_of(&path))
                    .flatten()
                    .and_then(|g| state.groups.get(&g)?.get(&caller.user).copied())
                    .map(|r| r as u16)
            }),
        Kind::Resource {
            of: o,
            path: p,
            level,
            ..
        } => {
            let reaches = (*o == of && *p == path)
                || (*o == "groups" && of == "projects" && group_of(&path).as_deref() == Some(p));
            reaches.then_some(*level)
        }
    };
    let Some(role) = role else {
        return message(404, "404 Project Not Found");
    };
    match (asked.method.as_str(), tail) {
        ("GET", None) => Answer::json(200, json!({"id": 7, "path_with_namespace": path})),
        ("POST", Some("access_tokens")) => {
            create_resource_token(state, asked, of, &path, role, &caller)
        }
        _ => message(404, "404 Not Found"),
    }
}

fn create_resource_token(
    state: &mut State,
    asked: &Asked,
    of: &'static str,
    path: &str,
    role: u16,
    caller: &Token,
) -> Answer {
    if !matches!(caller.kind, Kind::OAuth { .. }) || role < Role::Maintainer as u16 {
        return message(403, "403 Forbidden");
    }
    let body: Value = serde_json::from_slice(&asked.body).unwrap_or(Value::Null);
    let level = body["access_level"].as_u64().unwrap_or(40) as u16;
    if level > role {
        return message(400, "access_level: cannot be higher than your own role");
    }
    let scopes: Vec<String> = (body["scopes"].as_array().into_iter().flatten())
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    if scopes.is_empty() {
        return message(400, "scopes is missing");
    }
    let expires_at = body["expires_at"].as_str().unwrap_or_default().to_owned();
    if expires_at.len() != 10 || expires_at.as_str() <= state.today.as_str() {
        return message(400, "expires_at: must be a date after today");
    }
    let id = state.id();
    let token = state.secret("glpat-");
    state.tokens.insert(
        token.clone(),
        Token {
            user: format!("{of}_{id}_bot"),
            kind: Kind::Resource {
                of,
                path: path.to_owned(),
                id,
                level,
                expires_at: expires_at.clone(),
            },
            revoked: false,
        },
    );
    state.resource_tokens += 1;
    Answer::json(
        201,
        json!({"id": id, "name": body["name"], "revoked": false, "active": true, "scopes": scopes,
            "access_level": level, "expires_at": expires_at, "token": token, "user_id": id}),
    )
}
