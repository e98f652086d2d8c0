//! `Connection`: one reusable preset of credentials for an external service, usable by the
//! VcsAuthTokens of its namespace and, when allowed, of descendant namespaces.

mod aws;
mod other;
mod refs;
mod vcs;

pub use aws::{AccessKeys, Aws, AwsCredentials, DefaultChain, Ecr, EcrRepositoryType, IamRole};
pub use other::{DockerRegistry, NpmRegistry, PerforceAdmin, Slack};
pub use refs::SecretUse;
pub use vcs::{
    AzureDevOpsOAuth, AzureDevOpsPat, BitbucketCloud, BitbucketServer, GithubApp, GithubOAuth,
    Gitlab, Google, JetbrainsSpace, PermissionLevel, Permissions, SpaceMode,
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// The CEL rule that admits exactly one provider block.
const EXACTLY_ONE_PROVIDER: &str = concat!(
    "(has(self.githubApp) ? 1 : 0) + (has(self.githubOAuth) ? 1 : 0) + (has(self.gitlab) ? 1 : 0)",
    " + (has(self.bitbucketCloud) ? 1 : 0) + (has(self.bitbucketServer) ? 1 : 0)",
    " + (has(self.azureDevOpsOAuth) ? 1 : 0) + (has(self.azureDevOpsPat) ? 1 : 0)",
    " + (has(self.google) ? 1 : 0) + (has(self.dockerRegistry) ? 1 : 0) + (has(self.aws) ? 1 : 0)",
    " + (has(self.ecr) ? 1 : 0) + (has(self.slack) ? 1 : 0) + (has(self.jetbrainsSpace) ? 1 : 0)",
    " + (has(self.npmRegistry) ? 1 : 0) + (has(self.perforceAdmin) ? 1 : 0) == 1"
);

/// A reusable preset of credentials for one external service (TeamCity's "connection").
///
/// Exactly one provider block is set. Secrets are referenced in the Connection's own namespace
/// and are never copied; tokens minted from the connection are.
// Each printcolumn(...) repeats `type_`; clippy reads them as one duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "patchbay.dev",
    version = "v1alpha1",
    kind = "Connection",
    namespaced,
    status = "ConnectionStatus",
    shortname = "conn",
    category = "patchbay",
    doc = "A reusable preset of credentials for one external service, usable by VcsAuthTokens in its namespace and, when allowed, in descendant namespaces.",
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".status.connectionType",
        description = "The provider block that is set"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Configuration valid and secrets resolved"
    ),
    printcolumn(
        name = "Verified",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Verified\")].status",
        description = "Live check against the provider"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(EXACTLY_ONE_PROVIDER).message(
    "exactly one provider block must be set: githubApp, githubOAuth, gitlab, bitbucketCloud, bitbucketServer, azureDevOpsOAuth, azureDevOpsPat, google, dockerRegistry, aws, ecr, slack, jetbrainsSpace, npmRegistry or perforceAdmin"
))]
pub struct ConnectionSpec {
    /// Human-readable name shown in status messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    /// Whether VcsAuthTokens in descendant namespaces may use this connection. Default true,
    /// except for aws and ecr connections, where it defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_for_sub_projects: Option<bool>,
    /// Optional further guard: only descendant namespaces whose labels match may use the
    /// connection. The connection's own namespace always may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<LabelSelector>,
    /// Whether tokens in descendant namespaces may receive a copy of long-lived material:
    /// the connection's own keys as they are (aws `useSessionCredentials: false`), the
    /// operator's own identity (`defaultChain` without a role), or the password or token of a
    /// dockerRegistry, npmRegistry, slack, azureDevOpsPat or perforceAdmin connection. Default
    /// false: such tokens are refused outside the connection's namespace (`CopyNotAllowed`),
    /// because a copy outlives any revocation patchbay can do. Set it only where every
    /// namespace the connection is available to may hold that material; unsetting it
    /// withdraws the copies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copy_secret_to_sub_projects: bool,
    /// Extra CA certificates (PEM) that every call to this connection's servers trusts,
    /// besides the system's and the operator's `--extra-ca-bundle`: for a GitHub Enterprise,
    /// GitLab or registry server whose certificate no public CA issued. A key of a ConfigMap or
    /// a Secret in the connection's namespace; no other connection's calls trust it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<crate::api::ca_bundle::CaBundleRef>,
    /// A GitHub App that issues repository-scoped installation tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_app: Option<GithubApp>,
    /// A GitHub OAuth application.
    #[serde(
        default,
        rename = "githubOAuth",
        skip_serializing_if = "Option::is_none"
    )]
    pub github_oauth: Option<GithubOAuth>,
    /// A GitLab.com or GitLab CE/EE application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<Gitlab>,
    /// A Bitbucket Cloud OAuth consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitbucket_cloud: Option<BitbucketCloud>,
    /// A Bitbucket Server / Data Center application link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitbucket_server: Option<BitbucketServer>,
    /// An Azure DevOps OAuth application.
    #[serde(
        default,
        rename = "azureDevOpsOAuth",
        skip_serializing_if = "Option::is_none"
    )]
    pub azure_devops_oauth: Option<AzureDevOpsOAuth>,
    /// An Azure DevOps personal access token.
    #[serde(
        default,
        rename = "azureDevOpsPat",
        skip_serializing_if = "Option::is_none"
    )]
    pub azure_devops_pat: Option<AzureDevOpsPat>,
    /// A Google OAuth client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<Google>,
    /// A Docker registry login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_registry: Option<DockerRegistry>,
    /// An AWS account: STS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<Aws>,
    /// Amazon ECR: docker logins for a private or public registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr: Option<Ecr>,
    /// A Slack app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<Slack>,
    /// A JetBrains Space application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jetbrains_space: Option<JetbrainsSpace>,
    /// An npm registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm_registry: Option<NpmRegistry>,
    /// A Perforce Helix Core administrator login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perforce_admin: Option<PerforceAdmin>,
}

/// The observed state of a Connection.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (configuration valid, secrets resolved), `Verified` (live check against the
    /// provider), and the kstatus conditions `Reconciling` / `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The provider block that is set, e.g. `githubApp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<String>,
    /// For iamRole credentials without `externalId`: the generated, stable External ID to add to
    /// the role's trust policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// When the live check (the `Verified` condition) last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Time>,
    /// The value of the `patchbay.dev/verify-requested-at` annotation the last check honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_requested_at: Option<String>,
    /// Key rotation of accessKeys credentials ("Rotate key").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rotation: Option<KeyRotationStatus>,
}

/// What patchbay did about the last key rotation of an accessKeys connection.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyRotationStatus {
    /// The `patchbay.dev/rotate-key-requested-at` value last honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// The request being carried out: recorded before the new key is created, so that an
    /// operator stopped half-way finishes (or cleans up) the rotation when it comes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<String>,
    /// When the new key was written into the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<Time>,
    /// The key ID that was replaced (an identifier, not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_access_key_id: Option<String>,
    /// When the previous key will be (or was due to be) deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_previous_at: Option<Time>,
    /// When the previous key was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_deleted_at: Option<Time>,
    /// The outcome of the last rotation step, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The kind of a Connection: which provider block it sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectionKind {
    /// `githubApp`
    GithubApp,
    /// `githubOAuth`
    GithubOAuth,
    /// `gitlab`
    Gitlab,
    /// `bitbucketCloud`
    BitbucketCloud,
    /// `bitbucketServer`
    BitbucketServer,
    /// `azureDevOpsOAuth`
    AzureDevOpsOAuth,
    /// `azureDevOpsPat`
    AzureDevOpsPat,
    /// `google`
    Google,
    /// `dockerRegistry`
    DockerRegistry,
    /// `aws`
    Aws,
    /// `ecr`
    Ecr,
    /// `slack`
    Slack,
    /// `jetbrainsSpace`
    JetbrainsSpace,
    /// `npmRegistry`
    NpmRegistry,
    /// `perforceAdmin`
    PerforceAdmin,
}

impl ConnectionKind {
    /// Every kind, in the order of the spec's fields.
    pub const ALL: [ConnectionKind; 15] = [
        Self::GithubApp,
        Self::GithubOAuth,
        Self::Gitlab,
        Self::BitbucketCloud,
        Self::BitbucketServer,
        Self::AzureDevOpsOAuth,
        Self::AzureDevOpsPat,
        Self::Google,
        Self::DockerRegistry,
        Self::Aws,
        Self::Ecr,
        Self::Slack,
        Self::JetbrainsSpace,
        Self::NpmRegistry,
        Self::PerforceAdmin,
    ];

    /// The spec field name of this kind's block, e.g. `githubApp`.
    pub fn field_name(self) -> &'static str {
        match self {
            Self::GithubApp => "githubApp",
            Self::GithubOAuth => "githubOAuth",
            Self::Gitlab => "gitlab",
            Self::BitbucketCloud => "bitbucketCloud",
            Self::BitbucketServer => "bitbucketServer",
            Self::AzureDevOpsOAuth => "azureDevOpsOAuth",
            Self::AzureDevOpsPat => "azureDevOpsPat",
            Self::Google => "google",
            Self::DockerRegistry => "dockerRegistry",
            Self::Aws => "aws",
            Self::Ecr => "ecr",
            Self::Slack => "slack",
            Self::JetbrainsSpace => "jetbrainsSpace",
            Self::NpmRegistry => "npmRegistry",
            Self::PerforceAdmin => "perforceAdmin",
        }
    }

    /// The VcsAuthToken block a token of this kind carries (`github`, `aws`, `ecr`, `oauth`),
    /// `None` for kinds whose credential is projected without one. Part of the API: the CEL
    /// rules of `VcsAuthTokenSpec` name the same blocks.
    pub fn request_block(self) -> Option<&'static str> {
        match self {
            Self::GithubApp => Some("github"),
            Self::Aws => Some("aws"),
            Self::Ecr => Some("ecr"),
            Self::GithubOAuth
            | Self::Gitlab
            | Self::BitbucketCloud
            | Self::BitbucketServer
            | Self::AzureDevOpsOAuth
            | Self::Google
            | Self::JetbrainsSpace => Some("oauth"),
            Self::AzureDevOpsPat
            | Self::DockerRegistry
            | Self::NpmRegistry
            | Self::PerforceAdmin
            | Self::Slack => None,
        }
    }

    /// A request block a token of this kind may carry instead of [`request_block`]: `registry`
    /// (a scoped bearer token) for dockerRegistry, `oauth` (a rotating bot token) for slack.
    ///
    /// [`request_block`]: Self::request_block
    pub fn alternative_request_block(self) -> Option<&'static str> {
        match self {
            Self::DockerRegistry => Some("registry"),
            Self::Slack => Some("oauth"),
            _ => None,
        }
    }

    /// Whether connections of this kind serve descendant namespaces when
    /// `availableForSubProjects` is unset (TeamCity's defaults: not for AWS and ECR).
    pub fn available_for_sub_projects_by_default(self) -> bool {
        !matches!(self, Self::Aws | Self::Ecr)
    }
}

impl std::fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.field_name())
    }
}

impl ConnectionSpec {
    /// The kinds of every provider block that is set (exactly one in an admitted object).
    pub fn kinds(&self) -> Vec<ConnectionKind> {
        let set = [
            self.github_app.is_some(),
            self.github_oauth.is_some(),
            self.gitlab.is_some(),
            self.bitbucket_cloud.is_some(),
            self.bitbucket_server.is_some(),
            self.azure_devops_oauth.is_some(),
            self.azure_devops_pat.is_some(),
            self.google.is_some(),
            self.docker_registry.is_some(),
            self.aws.is_some(),
            self.ecr.is_some(),
            self.slack.is_some(),
            self.jetbrains_space.is_some(),
            self.npm_registry.is_some(),
            self.perforce_admin.is_some(),
        ];
        ConnectionKind::ALL
            .into_iter()
            .zip(set)
            .filter_map(|(kind, is_set)| is_set.then_some(kind))
            .collect()
    }

    /// The kind of this connection, when exactly one provider block is set.
    pub fn kind(&self) -> Option<ConnectionKind> {
        match self.kinds().as_slice() {
            [kind] => Some(*kind),
            _ => None,
        }
    }

    /// Whether descendant namespaces may use this connection, with the per-kind default.
    pub fn effective_available_for_sub_projects(&self) -> bool {
        self.available_for_sub_projects.unwrap_or_else(|| {
            self.kind()
                .is_some_and(ConnectionKind::available_for_sub_projects_by_default)
        })
    }
}

#[cfg(test)]
mod tests;
