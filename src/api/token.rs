//! `VcsAuthToken`: a request to mint a short-lived credential from a Connection visible to the
//! token's namespace, written into a Secret that build pods mount and renewed before it expires.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::connection::Permissions;
use super::{Condition, PackedMap, SecretKeyRef, patterns};

/// The CEL rule that admits at most one request block.
const AT_MOST_ONE_REQUEST: &str = "(has(self.github) ? 1 : 0) + (has(self.aws) ? 1 : 0) + (has(self.ecr) ? 1 : 0) + (has(self.oauth) ? 1 : 0) + (has(self.registry) ? 1 : 0) <= 1";

/// The CEL rule that keeps `secret.format` to the formats the request kind can fill.
const FORMAT_FITS_REQUEST: &str = concat!(
    "!has(self.secret) || !has(self.secret.format)",
    " || (has(self.github) && self.secret.format in ['basic-auth', 'git-credentials', 'opaque'])",
    " || (has(self.aws) && self.secret.format in ['aws-credentials', 'opaque'])",
    " || (has(self.ecr) && self.secret.format == 'dockerconfigjson')",
    " || (has(self.oauth) && self.secret.format in ['basic-auth', 'git-credentials', 'opaque'])",
    " || (has(self.registry) && self.secret.format in ['dockerconfigjson', 'opaque'])",
    " || (!has(self.github) && !has(self.aws) && !has(self.ecr) && !has(self.oauth) && !has(self.registry))"
);

/// The CEL rule that keeps users' Secret labels and annotations off patchbay's own keys.
const RESERVED_KEYS: &str =
    "self.all(k, k != 'app.kubernetes.io/managed-by' && !k.startsWith('patchbay.dev/'))";

/// A request for a short-lived credential minted from a Connection, kept fresh in a Secret.
///
/// `spec.connection` is looked up in the token's namespace, then its parent, up to the root
/// namespace; the nearest match wins.
// Each printcolumn(...) repeats `type_`; clippy reads them as one duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "patchbay.dev",
    version = "v1alpha1",
    kind = "VcsAuthToken",
    namespaced,
    status = "VcsAuthTokenStatus",
    shortname = "vat",
    category = "patchbay",
    doc = "A request to mint a short-lived credential from a Connection visible to this namespace, written into a Secret and renewed before it expires.",
    printcolumn(
        name = "Connection",
        type_ = "string",
        json_path = ".spec.connection",
        description = "Name of the Connection, resolved up the namespace tree"
    ),
    printcolumn(
        name = "Repositories",
        type_ = "string",
        json_path = ".spec.github.repositories",
        description = "Repositories a GitHub token is scoped to"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "A valid credential is in the Secret"
    ),
    printcolumn(
        name = "Expires",
        type_ = "string",
        json_path = ".status.expiresAt",
        description = "When the current credential expires"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(AT_MOST_ONE_REQUEST).message("at most one of github, aws, ecr, oauth or registry may be set"),
    validation = Rule::new(FORMAT_FITS_REQUEST).message("secret.format does not fit the request: github and oauth write basic-auth, git-credentials or opaque; aws writes aws-credentials or opaque; ecr writes dockerconfigjson; registry writes dockerconfigjson or opaque").field_path(".secret.format")
)]
pub struct VcsAuthTokenSpec {
    /// Name of the Connection to mint from, looked up in this namespace and then up the
    /// namespace tree.
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub connection: String,
    /// Request for a GitHub App installation token (githubApp connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<Box<GithubTokenRequest>>,
    /// Request for AWS STS credentials (aws connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<Box<AwsTokenRequest>>,
    /// Request for an ECR docker login (ecr connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr: Option<Box<EcrTokenRequest>>,
    /// Request for an OAuth access token from a user's grant (githubOAuth, gitlab,
    /// bitbucketCloud, bitbucketServer, azureDevOpsOAuth, google, jetbrainsSpace connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<Box<OAuthTokenRequest>>,
    /// Request for a short-lived registry bearer token (dockerRegistry connections whose
    /// registry speaks the Docker token protocol). Without it, a dockerRegistry token receives
    /// the connection's login itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<Box<RegistryTokenRequest>>,
    /// The Secret the credential is written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretTemplate>,
    /// How long before expiry the credential is renewed, as a Go duration (`20m`, `1h`).
    /// Default: one third of the issued lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(patterns::GO_DURATION))]
    #[x_kube(validation = Rule::new("!self.matches('^([0.]+(ns|us|µs|ms|s|m|h))+$')").message("renewBefore must be a positive duration"))]
    pub renew_before: Option<String>,
}

/// A GitHub App installation token scoped to named repositories.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GithubTokenRequest {
    /// Repository names without the owner (`my-repo`, not `acme/my-repo`); 1 to 500. There are
    /// no unscoped tokens.
    #[schemars(
        length(min = 1, max = 500),
        inner(length(min = 1, max = 100), pattern(r"^[A-Za-z0-9._-]+$")),
        extend("x-kubernetes-list-type" = "set")
    )]
    #[x_kube(validation = Rule::new("self.all(r, r != '.' && r != '..')").message("repositories may not be . or .."))]
    pub repositories: Vec<String>,
    /// Account that owns the repositories; default: the connection's `ownerUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 39),
        pattern(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
    )]
    pub owner: Option<String>,
    /// Permissions to request (`contents: read`); default: the installation's, capped by the
    /// connection's `maxPermissions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub permissions: Option<Permissions>,
    /// A GitHub user's token: permissions are lowered to the least this user holds across the
    /// requested repositories, and `status.personalAccessTokenSource` becomes `UserProvided`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_token: Option<SecretKeyRef>,
}

/// AWS STS credentials.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AwsTokenRequest {
    /// Session lifetime in seconds, 900 to 43200, capped by the connection's
    /// `maxSessionDuration` (and at 3600 when roles are chained). Default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 900, max = 43200))]
    pub duration_seconds: Option<i32>,
    /// A role to assume with the connection's credentials; must match the connection's
    /// `allowedRoleArns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(patterns::ROLE_ARN))]
    pub role_arn: Option<String>,
    /// Role session name; default derived from namespace and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), pattern(r"^[A-Za-z0-9_+=,.@-]+$"))]
    pub role_session_name: Option<String>,
    /// Inline session policy (JSON) that further restricts the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub policy: Option<String>,
    /// Managed policy ARNs that further restrict the session (at most 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 10),
        inner(length(max = 2048), pattern(patterns::POLICY_ARN))
    )]
    pub policy_arns: Option<Vec<String>>,
    /// Extra session tags; `patchbay.dev/namespace` and `patchbay.dev/name` are always added.
    /// At most 48 (STS allows 50), keys up to 128 and values up to 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 48))]
    #[x_kube(validation = Rule::new("self.all(k, k.size() >= 1 && k.size() <= 128)").message("session tag keys are 1 to 128 characters"))]
    #[x_kube(validation = Rule::new("self.all(k, self[k].size() <= 256)").message("session tag values may be at most 256 characters"))]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('patchbay.dev/'))").message("session tag keys under patchbay.dev/ are reserved"))]
    pub session_tags: Option<BTreeMap<String, String>>,
}

/// An ECR docker login; the registry comes from the connection.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
pub struct EcrTokenRequest {}

/// A registry bearer token for named scopes, from the registry's token service.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryTokenRequest {
    /// Scopes in the Docker token protocol's syntax, e.g. `repository:team/app:pull,push`
    /// (1 to 20). The token grants what the token service grants the connection's user for
    /// them, which may be less; `status.permissions` shows it.
    #[schemars(
        length(min = 1, max = 20),
        inner(length(min = 1, max = 512), pattern(r"^(repository(\(plugin\))?:[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*:(pull|push|delete|\*)(,(pull|push|delete|\*))*|registry:catalog:\*)$")),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub scopes: Vec<String>,
}

/// An OAuth access token: refreshed from a user's grant, or, without one, issued to the
/// application itself (the client credentials grant, for kinds that offer it).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct OAuthTokenRequest {
    /// The user's grant: a Secret in this namespace whose key holds the refresh token
    /// (`patchbay login` writes one). Rotated refresh tokens are written back to this key, and
    /// the current access token beside it (`<key>.access-token`, `<key>.expires-at`), so that
    /// every token sharing the grant uses one refresh. Unset: the client credentials grant
    /// (jetbrainsSpace, bitbucketCloud, and azureDevOpsOAuth through Microsoft Entra ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretKeyRef>,
    /// Scopes to ask for, space-separated; default: what the grant or the application has.
    /// A refresh may narrow the grant's scopes but never widen them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 1024),
        pattern(r"^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$")
    )]
    pub scope: Option<String>,
    /// A GitLab project or group access token instead of the user's own token (gitlab
    /// connections): minted with the user's grant (they must be a Maintainer there), limited
    /// to `scopes` and `accessLevel` on one project or group, and rotated by minting a new one
    /// and revoking the old after the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<GitlabAccessTokenRequest>,
}

/// A GitLab project or group access token: exactly one of `project` and `group`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.project) != has(self.group)").message("set exactly one of project and group"))]
pub struct GitlabAccessTokenRequest {
    /// The project's full path (`acme/app`) or numeric ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 255),
        pattern(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*$")
    )]
    pub project: Option<String>,
    /// The group's full path (`acme/platform`) or numeric ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 255),
        pattern(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*$")
    )]
    pub group: Option<String>,
    /// Token scopes, e.g. `read_repository` (1 to 10).
    #[schemars(
        length(min = 1, max = 10),
        inner(length(min = 1, max = 64), pattern(r"^[a-z_]+$")),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub scopes: Vec<String>,
    /// The token's role: `guest`, `reporter` (default), `developer` or `maintainer`; never
    /// more than the user's own.
    #[serde(default)]
    pub access_level: GitlabAccessLevel,
    /// Days until GitLab expires it (GitLab counts whole days), 1 to 30; default 2. It is
    /// renewed at two thirds of that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 30))]
    pub lifetime_days: Option<u32>,
}

/// A GitLab role for an access token.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum GitlabAccessLevel {
    /// 10.
    Guest,
    /// 20.
    #[default]
    Reporter,
    /// 30.
    Developer,
    /// 40.
    Maintainer,
}

/// Layout of the Secret that holds the credential.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SecretFormat {
    /// `kubernetes.io/basic-auth` with `username` and `password` (plus `token`, `expires_at`).
    BasicAuth,
    /// A `.git-credentials` file (plus `token`, `expires_at`).
    GitCredentials,
    /// Opaque: only `token` and `expires_at` (or the AWS keys).
    Opaque,
    /// AWS environment keys, an INI `credentials` file and `expiration`.
    AwsCredentials,
    /// `kubernetes.io/dockerconfigjson` for image pulls and docker login.
    #[serde(rename = "dockerconfigjson")]
    DockerConfigJson,
    /// An `.npmrc` file (npm registries).
    Npmrc,
}

/// What happens to the Secret when its VcsAuthToken is deleted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Owned through an ownerReference and deleted with the token.
    #[default]
    Delete,
    /// Left in place (without an ownerReference).
    Retain,
}

/// The Secret a VcsAuthToken writes.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// Name of the Secret; default the VcsAuthToken's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub name: Option<String>,
    /// Layout of the Secret; default per provider (basic-auth for GitHub and Azure DevOps,
    /// aws-credentials for AWS, dockerconfigjson for ECR and Docker registries, npmrc for npm,
    /// opaque for Slack and Perforce).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SecretFormat>,
    /// Labels copied onto the Secret; `app.kubernetes.io/managed-by` and keys under
    /// `patchbay.dev/` are patchbay's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new(RESERVED_KEYS).message("labels app.kubernetes.io/managed-by and patchbay.dev/* are set by patchbay"))]
    pub labels: BTreeMap<String, String>,
    /// Annotations copied onto the Secret; keys under `patchbay.dev/` are patchbay's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new(RESERVED_KEYS).message("annotations patchbay.dev/* are set by patchbay"))]
    pub annotations: BTreeMap<String, String>,
    /// `Delete` (default): the Secret is owned by the token and deleted with it. `Retain`: left
    /// in place.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Where a personal access token for permission lowering came from.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonalAccessTokenSource {
    /// `spec.github.userToken` was given.
    UserProvided,
    /// No user token; permissions were not lowered for a user.
    None,
}

/// Where a token's connection was found.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRef {
    /// Namespace the Connection lives in.
    pub namespace: String,
    /// Name of the Connection.
    pub name: String,
}

/// Where the current credential was minted: the only place patchbay revokes it. Recorded in
/// the status, which tenants do not write (grant them no `vcsauthtokens/status`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    /// The connection kind that minted it, e.g. `githubApp`.
    pub kind: String,
    /// The provider's API that minted it, when revoking needs it (GitHub's REST API base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A credential a newer one replaced, left valid for the operator's grace period so that builds
/// still using it finish; it is revoked at `revokeAt`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Superseded {
    /// Its fingerprint (`sha256:...`).
    pub token_id: String,
    /// Where it was minted, and so where it is revoked.
    pub issuer: Issuer,
    /// When it is revoked.
    pub revoke_at: Time,
}

/// The observed state of a VcsAuthToken (mirrors the installationToken endpoint's response).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VcsAuthTokenStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, and the kstatus conditions `Reconciling` / `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The Connection the namespace tree resolved `spec.connection` to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<ConnectionRef>,
    /// Fingerprint of the current credential (`sha256:...`); never the credential itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// Permissions as the provider granted them.
    #[serde(default, skip_serializing_if = "PackedMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub permissions: PackedMap,
    /// Repositories the credential can access, as the provider granted them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// `UserProvided` when permissions were lowered to a user's, `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_access_token_source: Option<PersonalAccessTokenSource>,
    /// When the current credential was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Time>,
    /// When the current credential expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// When patchbay will renew the credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_at: Option<Time>,
    /// Number of credentials minted so far.
    #[serde(default)]
    pub revision: i64,
    /// Name of the Secret holding the credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// The resourceVersion of the Secret as patchbay last wrote it (or found it holding the
    /// current credential). While the Secret watch reports the Secret at this version, the
    /// Secret is as the status describes it and a look at the token reads nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_resource_version: Option<String>,
    /// Where the current credential was minted, and so where it is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Issuer>,
    /// Where the last credential was minted, kept when the credential is withdrawn: what the
    /// token sent of its own (a GitHub user token) went there, and goes nowhere else unasked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_issuer: Option<Issuer>,
    /// The credential the current one replaced, while it waits out the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded: Option<Box<Superseded>>,
}
