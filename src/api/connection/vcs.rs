//! Provider blocks for source-hosting and identity services: GitHub, GitLab, Bitbucket,
//! Azure DevOps, Google and JetBrains Space.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::{SecretKeyRef, patterns};

fn github_com() -> String {
    "https://github.com".into()
}

fn gitlab_com() -> String {
    "https://gitlab.com".into()
}

fn bitbucket_org() -> String {
    "https://bitbucket.org".into()
}

fn google_oauth() -> String {
    "https://oauth2.googleapis.com".into()
}

fn azure_devops_services() -> String {
    "https://app.vssps.visualstudio.com".into()
}

/// The access level of one GitHub App permission.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum PermissionLevel {
    /// Read-only access.
    Read,
    /// Read and write access.
    Write,
    /// Administrative access.
    Admin,
}

/// GitHub App permissions by name (`contents`, `pull_requests`, `metadata`, ...).
pub type Permissions = BTreeMap<String, PermissionLevel>;

/// A GitHub App (github.com or GitHub Enterprise Server) that issues installation tokens.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GithubApp {
    /// GitHub server: `https://github.com`, or a GitHub Enterprise Server such as
    /// `https://ghe.example.com` (its API base becomes `/api/v3`).
    #[serde(default = "github_com")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// Numeric App ID shown on the App's settings page.
    #[schemars(length(min = 1, max = 20), pattern(r"^[0-9]+$"))]
    pub app_id: String,
    /// The App's client ID (`Iv1.`/`Iv23...`); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub client_id: Option<String>,
    /// The App's private key (PEM, PKCS#1 or PKCS#8) in a Secret of this namespace.
    pub private_key: SecretKeyRef,
    /// The App's client secret; optional, used for user authorization flows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretKeyRef>,
    /// The App's webhook secret; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<SecretKeyRef>,
    /// URL of the account that installed the App, e.g. `https://github.com/acme`. Used to find
    /// the installation when `installationId` is not set, and as the default token owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub owner_url: Option<String>,
    /// Installation ID; when set, the installation lookup is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub installation_id: Option<i64>,
    /// Ceiling for the permissions of every token minted from this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub max_permissions: Option<Permissions>,
    /// Ceiling for the repositories tokens may name: repository names or globs (`app-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 500),
        inner(length(min = 1, max = 100), pattern(r"^[A-Za-z0-9._*?-]+$"))
    )]
    pub allowed_repositories: Option<Vec<String>>,
    /// Accounts other than the `ownerUrl` one that tokens may name in `spec.github.owner`:
    /// account names or globs (`acme-*`). Unset: tokens mint for the `ownerUrl` account only.
    /// Every account listed is reachable by every namespace this connection is available to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 100),
        inner(length(min = 1, max = 39), pattern(r"^[A-Za-z0-9*?-]+$"))
    )]
    pub allowed_owners: Option<Vec<String>>,
}

/// A GitHub OAuth application (github.com or GitHub Enterprise Server).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GithubOAuth {
    /// GitHub server: `https://github.com` or a GitHub Enterprise Server URL.
    #[serde(default = "github_com")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// The OAuth application's client ID.
    #[schemars(length(min = 1, max = 100))]
    pub client_id: String,
    /// The OAuth application's client secret.
    pub client_secret: SecretKeyRef,
}

/// A GitLab application on GitLab.com or a self-managed GitLab CE/EE server.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Gitlab {
    /// GitLab server: `https://gitlab.com` or a CE/EE server URL.
    #[serde(default = "gitlab_com")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// The GitLab application ID.
    #[schemars(length(min = 1, max = 256))]
    pub application_id: String,
    /// The GitLab application secret.
    pub secret: SecretKeyRef,
}

/// A Bitbucket Cloud OAuth consumer.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BitbucketCloud {
    /// Bitbucket Cloud: `https://bitbucket.org` (the default; another URL is for a proxy or a
    /// test server that stands in for it).
    #[serde(default = "bitbucket_org")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// The OAuth consumer key.
    #[schemars(length(min = 1, max = 256))]
    pub key: String,
    /// The OAuth consumer secret.
    pub secret: SecretKeyRef,
}

/// An application link on a Bitbucket Server / Data Center.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BitbucketServer {
    /// Bitbucket Server URL, e.g. `https://bitbucket.example.com`.
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// The application's client ID.
    #[schemars(length(min = 1, max = 256))]
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: SecretKeyRef,
}

/// An Azure DevOps OAuth application (Services or Server).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AzureDevOpsOAuth {
    /// Authorization server: with `tenantId`, the Microsoft Entra ID authority
    /// (`https://login.microsoftonline.com` when left at the default); without it, the legacy
    /// Azure DevOps OAuth server `https://app.vssps.visualstudio.com`, which Microsoft is
    /// retiring (patchbay mints only through Entra ID).
    #[serde(default = "azure_devops_services")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// The Microsoft Entra ID tenant (directory) the application is registered in, a GUID or a
    /// domain such as `contoso.onmicrosoft.com`. Required to mint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), pattern(r"^[A-Za-z0-9][A-Za-z0-9.-]*$"))]
    pub tenant_id: Option<String>,
    /// The registered application's ID.
    #[schemars(length(min = 1, max = 256))]
    pub application_id: String,
    /// Space-separated scopes asked for: with Entra ID, `499b84ac-1321-427f-aa17-267ca6975798/.default`
    /// (Azure DevOps) for client credentials, or that resource's delegated scopes; legacy apps
    /// listed `vso.code vso.identity`.
    #[schemars(length(min = 1, max = 1024))]
    pub scope: String,
    /// The application's client secret.
    pub client_secret: SecretKeyRef,
}

/// An Azure DevOps personal access token.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AzureDevOpsPat {
    /// Server URL: `https://{account}.visualstudio.com`, `https://dev.azure.com/{org}`, or an
    /// Azure DevOps Server such as `https://tfs.example.com:8080/tfs/`.
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// The personal access token.
    pub personal_access_token: SecretKeyRef,
}

/// A Google OAuth client.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Google {
    /// Google's OAuth server: `https://oauth2.googleapis.com` (the default; another URL is for a
    /// proxy or a test server that stands in for it).
    #[serde(default = "google_oauth")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// The OAuth client ID (`...apps.googleusercontent.com`).
    #[schemars(length(min = 1, max = 256))]
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: SecretKeyRef,
}

/// Whether a JetBrains Space connection serves the whole organization or one project.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SpaceMode {
    /// Organization-wide application.
    #[default]
    Organization,
    /// Application restricted to one Space project (`project` is then required).
    Project,
}

/// A JetBrains Space application.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'project' || has(self.project)")
    .message("project is required when mode is project").field_path(".project"))]
pub struct JetbrainsSpace {
    /// Space organization URL, e.g. `https://acme.jetbrains.space`.
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub server_url: String,
    /// The application's client ID.
    #[schemars(length(min = 1, max = 256))]
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: SecretKeyRef,
    /// `organization` (default) or `project`.
    #[serde(default)]
    pub mode: SpaceMode,
    /// The Space project key when `mode` is `project`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub project: Option<String>,
}
