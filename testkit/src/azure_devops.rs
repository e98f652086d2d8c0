//! An Azure DevOps simulator: `_apis/connectionData` for one organization, with basic-auth
//! personal access tokens, answering a refused token as Azure DevOps does (a 203 sign-in page,
//! or 401 when asked with `X-TFS-FedAuthRedirect: Suppress`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::http::{Answer, Handler, Server};

/// The simulator, its organization and the tokens it accepts.
pub struct AzureDevOpsSim {
    server: Server,
    organization: String,
    tokens: Arc<Mutex<BTreeSet<String>>>,
}

impl AzureDevOpsSim {
    /// A simulator for `organization` that accepts `tokens`.
    pub async fn start(organization: &str, tokens: &[&str]) -> Self {
        let tokens = Arc::new(Mutex::new(tokens.iter().map(|t| t.to_string()).collect()));
        let state: Arc<Mutex<BTreeSet<String>>> = Arc::clone(&tokens);
        let path = format!("/{organization}/_apis/connectionData");
        let handler: Handler = Arc::new(move |asked| {
            if asked.path != path {
                return Answer::json(404, json!({"message": "not found"}));
            }
            let accepted = asked.basic().is_some_and(|(_, pat)| {
                (state.lock().unwrap_or_else(|e| e.into_inner())).contains(&pat)
            });
            if accepted {
                return Answer::json(
                    200,
                    json!({"authenticatedUser": {"id": "4f6e-ci", "descriptor": "ci",
                        "providerDisplayName": "CI Bot", "isActive": true},
                        "instanceId": "a1b2c3", "locationServiceData": {}}),
                );
            }
            if asked.header("x-tfs-fedauthredirect") == Some("Suppress") {
                return Answer::json(401, json!({"message": "TF400813: not authorized"}));
            }
            Answer {
                status: 203,
                headers: vec![("content-type".into(), "text/html".into())],
                body: b"<html>Sign in</html>".to_vec(),
            }
        });
        Self {
            server: Server::start(handler).await,
            organization: organization.to_string(),
            tokens,
        }
    }

    /// The organization URL, as `spec.azureDevOpsPat.serverUrl` takes it.
    pub fn organization_url(&self) -> String {
        format!("{}/{}", self.server.url(), self.organization)
    }

    /// Revokes `token`.
    pub fn revoke(&self, token: &str) {
        (self.tokens.lock().unwrap_or_else(|e| e.into_inner())).remove(token);
    }

    /// Accepts `token` from now on.
    pub fn accept(&self, token: &str) {
        (self.tokens.lock().unwrap_or_else(|e| e.into_inner())).insert(token.to_string());
    }
}
