//! A Slack Web API simulator: `auth.test` as Slack answers it, including its habit of
//! reporting failures as HTTP 200 with `ok: false`; and token rotation at `oauth.v2.access`
//! (`grant_type=refresh_token` with the app's client in the form): a 12-hour `xoxe.xoxb-` bot
//! token and a new refresh token each time, the used refresh token refused afterwards
//! (`invalid_refresh_token`, with HTTP 200).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::http::{Answer, Handler, Server};

/// The simulator and the bot tokens it knows.
pub struct SlackSim {
    server: Server,
    tokens: Arc<Mutex<Tokens>>,
}

#[derive(Default)]
struct Tokens {
    valid: BTreeSet<String>,
    revoked: BTreeSet<String>,
    /// Refresh tokens not used yet.
    refresh: BTreeSet<String>,
    next: u64,
    rotations: u64,
}

/// The app's client for `oauth.v2.access`.
pub const CLIENT: (&str, &str) = ("1234.5678", "slack-client-secret");

fn rotate(tokens: &mut Tokens, asked: &crate::http::Asked) -> serde_json::Value {
    let form: std::collections::BTreeMap<String, String> =
        form_urlencoded::parse(&asked.body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    if (field("client_id"), field("client_secret")) != (Some(CLIENT.0), Some(CLIENT.1)) {
        return json!({"ok": false, "error": "invalid_client_id"});
    }
    if field("grant_type") != Some("refresh_token") {
        return json!({"ok": false, "error": "invalid_grant_type"});
    }
    match field("refresh_token") {
        Some(r) if tokens.refresh.remove(r) => {}
        _ => return json!({"ok": false, "error": "invalid_refresh_token"}),
    }
    tokens.next += 1;
    tokens.rotations += 1;
    let n = tokens.next;
    let access = format!("xoxe.xoxb-1-rotated{n:08}");
    let refresh = format!("xoxe-1-refresh{n:08}");
    tokens.valid.insert(access.clone());
    tokens.refresh.insert(refresh.clone());
    json!({"ok": true, "access_token": access, "refresh_token": refresh, "expires_in": 43200,
        "token_type": "bot", "scope": "chat:write", "bot_user_id": "U0000001",
        "app_id": "A0000001", "team": {"id": "T0000001", "name": "ACME"}})
}

impl SlackSim {
    /// A simulator that accepts `tokens`.
    pub async fn start(tokens: &[&str]) -> Self {
        let known = Tokens {
            valid: tokens.iter().map(|t| t.to_string()).collect(),
            ..Tokens::default()
        };
        let tokens = Arc::new(Mutex::new(known));
        let state = tokens.clone();
        let handler: Handler = Arc::new(move |asked| {
            let mut tokens = state.lock().unwrap_or_else(|e| e.into_inner());
            if asked.path == "/api/oauth.v2.access" {
                return Answer::json(200, rotate(&mut tokens, asked));
            }
            if asked.path != "/api/auth.test" {
                return Answer::json(404, json!({"ok": false, "error": "unknown_method"}));
            }
            let answer = match asked.bearer() {
                None => json!({"ok": false, "error": "not_authed"}),
                Some(t) if tokens.revoked.contains(t) => {
                    json!({"ok": false, "error": "token_revoked"})
                }
                Some(t) if tokens.valid.contains(t) => json!({
                    "ok": true, "url": "https://acme.slack.com/", "team": "ACME",
                    "user": "ci-notifier", "team_id": "T0000001", "user_id": "U0000001",
                    "bot_id": "B0000001", "is_enterprise_install": false,
                }),
                Some(_) => json!({"ok": false, "error": "invalid_auth"}),
            };
            Answer::json(200, answer)
        });
        Self {
            server: Server::start(handler).await,
            tokens,
        }
    }

    /// The Web API base, as `spec.slack.apiUrl` takes it.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.url())
    }

    /// Revokes `token` (as uninstalling the app does).
    pub fn revoke(&self, token: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.valid.remove(token);
        tokens.revoked.insert(token.to_string());
    }

    /// A refresh token of an installation with token rotation, as Slack hands it out.
    pub fn refresh_token(&self) -> String {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.next += 1;
        let token = format!("xoxe-1-install{:08}", tokens.next);
        tokens.refresh.insert(token.clone());
        token
    }

    /// How many rotations were granted.
    pub fn rotations(&self) -> u64 {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rotations
    }

    /// Whether Slack accepts `token` at `auth.test`.
    pub fn accepts(&self, token: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.valid.contains(token) && !tokens.revoked.contains(token)
    }

    /// How many `auth.test` calls were made.
    pub fn calls(&self) -> usize {
        (self.server.asked().iter())
            .filter(|a| a.path == "/api/auth.test")
            .count()
    }
}
