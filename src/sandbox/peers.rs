//! The sandbox's stand-ins for the services the registry, package and chat examples name: a
//! Slack and an Azure DevOps simulator (always), and, when they are installed, a real Docker
//! registry with a token service (`scripts/registry`) and verdaccio (`scripts/verdaccio`).
//! The example connections and their Secrets are pointed at them, so that a new user sees
//! these kinds Verified and their tokens Ready.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use testkit::azure_devops::AzureDevOpsSim;
use testkit::registry::{Auth, Registry, TokenService};
use testkit::slack::SlackSim;
use testkit::verdaccio::Verdaccio;

/// Where an example points when its peer is not installed: a closed local port, so the
/// sandbox never reaches the real service.
const NOWHERE: &str = "http://127.0.0.1:9";

/// The fake secret every example Secret holds (examples/connections/*.yaml).
const EXAMPLE_SECRET: &str = "not-a-real-secret";
/// The fake bot token of examples/connections/slack.yaml.
const EXAMPLE_BOT_TOKEN: &str = "xoxb-not-a-real-token";
/// The user of examples/connections/docker-registry.yaml.
const EXAMPLE_REGISTRY_USER: &str = "acme-ci-bot";

/// The running stand-ins.
pub struct Peers {
    slack: SlackSim,
    azure: AzureDevOpsSim,
    registry: Option<Registry>,
    npm: Option<(Verdaccio, String)>,
}

impl Peers {
    /// Starts the simulators, and the registry and verdaccio when they are installed.
    pub async fn start() -> Self {
        let service = TokenService::new(
            &[(EXAMPLE_REGISTRY_USER, EXAMPLE_SECRET)],
            Duration::from_secs(300),
        );
        let registry = Registry::start(Auth::Token(Arc::clone(&service)))
            .await
            .ok();
        let npm = match Verdaccio::start().await {
            Ok(v) => v
                .add_user("acme-ci", EXAMPLE_SECRET)
                .await
                .ok()
                .map(|token| (v, token)),
            Err(_) => None,
        };
        Self {
            slack: SlackSim::start(&[EXAMPLE_BOT_TOKEN]).await,
            azure: AzureDevOpsSim::start("acme", &[EXAMPLE_SECRET]).await,
            registry,
            npm,
        }
    }

    /// One line per stand-in, for the banner.
    pub fn describe(&self) -> String {
        let registry = self.registry.as_ref().map_or_else(
            || "no Docker registry (install it with scripts/registry)".to_string(),
            |r| format!("a Docker registry at {} with a token service", r.url()),
        );
        let npm = self.npm.as_ref().map_or_else(
            || "no npm registry (install verdaccio with scripts/verdaccio)".to_string(),
            |(v, _)| format!("verdaccio at {}", v.url()),
        );
        format!(
            "Slack at {}, Azure DevOps at {}, {registry}, {npm}",
            self.slack.api_url(),
            self.azure.organization_url()
        )
    }

    /// Points an example document at the stand-ins.
    pub fn rewrite(&self, doc: &mut Value) {
        let registry = self
            .registry
            .as_ref()
            .map_or(NOWHERE.to_string(), Registry::url);
        let npm_url = self
            .npm
            .as_ref()
            .map_or(NOWHERE.to_string(), |(v, _)| v.url());
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut set = |pointer: &str, value: String| {
            if let Some(slot) = doc.pointer_mut(pointer) {
                *slot = Value::String(value);
            }
        };
        match (kind.as_str(), name.as_str()) {
            ("Connection", _) => {
                set(
                    "/spec/azureDevOpsPat/serverUrl",
                    self.azure.organization_url(),
                );
                set("/spec/dockerRegistry/url", registry);
                set("/spec/npmRegistry/registryUrl", npm_url);
                if let Some(slack) = doc
                    .pointer_mut("/spec/slack")
                    .and_then(Value::as_object_mut)
                {
                    slack.insert("apiUrl".into(), Value::String(self.slack.api_url()));
                }
            }
            ("Secret", "acme-npm") => {
                if let Some((_, token)) = &self.npm {
                    set("/stringData/token", token.clone());
                }
            }
            _ => {}
        }
    }
}
