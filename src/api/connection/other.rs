//! Provider blocks for registries, chat and version control servers with static credentials:
//! Docker registries, Slack, npm registries and Perforce.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::{SecretKeyRef, patterns};

fn docker_hub() -> String {
    "https://docker.io".into()
}

fn slack_api() -> String {
    "https://slack.com/api".into()
}

fn npmjs() -> String {
    "https://registry.npmjs.org".into()
}

/// A Docker registry login. Tokens without a request block receive the login itself (a
/// `dockerconfigjson`); tokens with `spec.registry` receive a short-lived bearer token from the
/// registry's token service, scoped to the repositories they name.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DockerRegistry {
    /// Registry address, e.g. `https://docker.io` (default) or `https://ghcr.io`.
    #[serde(default = "docker_hub")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub url: String,
    /// User name for the registry.
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    /// Password or access token for the registry.
    pub password: SecretKeyRef,
}

/// A Slack app used for build notifications.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Slack {
    /// The Slack app's client ID.
    #[schemars(length(min = 1, max = 256))]
    pub client_id: String,
    /// The Slack app's client secret.
    pub client_secret: SecretKeyRef,
    /// The bot user OAuth token (`xoxb-...`), projected as `SLACK_BOT_TOKEN`.
    pub bot_token: SecretKeyRef,
    /// The Web API base; default `https://slack.com/api`. Change it only for a gateway in front
    /// of Slack.
    #[serde(default = "slack_api")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub api_url: String,
}

/// An npm registry.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NpmRegistry {
    /// Registry URL; default `https://registry.npmjs.org`.
    #[serde(default = "npmjs")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub registry_url: String,
    /// Package scope the registry serves, e.g. `@acme`; all packages when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 214), pattern(r"^@[a-z0-9-~][a-z0-9-._~]*$"))]
    pub scope: Option<String>,
    /// Access token for the registry; anonymous access when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretKeyRef>,
}

/// A Perforce Helix Core administrator login.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PerforceAdmin {
    /// The server address (P4PORT), e.g. `ssl:perforce.example.com:1666`.
    #[schemars(length(min = 1, max = 512), pattern(r"^((ssl|tcp|ssl4|tcp4|ssl6|tcp6|ssl64|tcp64|ssl46|tcp46):)?[A-Za-z0-9.\[\]:-]+:[0-9]{1,5}$"))]
    pub host: String,
    /// The administrator's user name (P4USER).
    #[schemars(length(min = 1, max = 256))]
    pub user: String,
    /// The administrator's password or ticket (P4PASSWD).
    pub password: SecretKeyRef,
}
