//! A Slack Web API simulator: `auth.test` as Slack answers it, including its habit of
//! reporting failures as HTTP 200 with `ok: false`.

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
            if asked.path != "/api/auth.test" {
                return Answer::json(404, json!({"ok": false, "error": "unknown_method"}));
            }
            let tokens = state.lock().unwrap_or_else(|e| e.into_inner());
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

    /// How many `auth.test` calls were made.
    pub fn calls(&self) -> usize {
        self.server.asked().len()
    }
}
