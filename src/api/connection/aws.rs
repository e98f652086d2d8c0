//! Provider blocks for Amazon Web Services: STS credentials and ECR registry logins.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::{SecretKeyRef, patterns};

fn yes() -> bool {
    true
}

/// How an aws or ecr Connection obtains its AWS identity: exactly one of the three kinds.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.accessKeys) ? 1 : 0) + (has(self.iamRole) ? 1 : 0) + (has(self.defaultChain) ? 1 : 0) == 1"
).message("exactly one of accessKeys, iamRole or defaultChain must be set"))]
pub struct AwsCredentials {
    /// Static access keys of an IAM user, read from a Secret of this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_keys: Option<AccessKeys>,
    /// An IAM role assumed with the credentials of another aws Connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role: Option<IamRole>,
    /// The operator's own AWS identity (IRSA, instance profile, environment). Refused unless the
    /// operator runs with `--allow-default-credential-chain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_chain: Option<DefaultChain>,
}

/// Static access keys of an IAM user.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeys {
    /// The access key ID (`AKIA...`).
    pub access_key_id: SecretKeyRef,
    /// The secret access key.
    pub secret_access_key: SecretKeyRef,
    /// Hand out temporary `GetSessionToken` credentials instead of the static keys
    /// (default true; strongly recommended).
    #[serde(default = "yes")]
    pub use_session_credentials: bool,
    /// Lifetime in seconds of session credentials made with `GetSessionToken`
    /// (900 to 129600; default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 900, max = 129600))]
    pub session_duration: Option<i32>,
    /// How long the previous key stays active after a rotation ("Rotate key", asked for with
    /// the `patchbay.dev/rotate-key-requested-at` annotation), as a Go duration; default `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(patterns::GO_DURATION))]
    pub old_key_retention: Option<String>,
}

/// An IAM role to assume.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IamRole {
    /// Name of the aws Connection whose credentials assume the role, resolved up the namespace
    /// tree like a token's connection.
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub connection: String,
    /// ARN of the role to assume, e.g. `arn:aws:iam::123456789012:role/ci-deployer`.
    #[schemars(length(max = 2048), pattern(patterns::ROLE_ARN))]
    pub role_arn: String,
    /// Session tag value that identifies sessions of this connection in AWS logs; generated
    /// when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), pattern(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$"))]
    pub session_tag: Option<String>,
    /// External ID the role's trust policy requires. When empty, patchbay generates a stable one
    /// and shows it in `status.externalId`; add it to the trust policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), pattern(r"^[A-Za-z0-9_+=,.@:/-]+$"))]
    pub external_id: Option<String>,
}

/// Marker for the operator's own default credential provider chain.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
pub struct DefaultChain {}

/// An Amazon Web Services account: STS credentials for builds and for other connections.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Aws {
    /// AWS region, e.g. `eu-west-1`; also selects the regional STS endpoint.
    #[schemars(length(max = 32), pattern(patterns::AWS_REGION))]
    pub region: String,
    /// STS endpoint URL. Default: the regional endpoint of `region`. Use
    /// `https://sts.amazonaws.com` for the global endpoint, or an S3-compatible alternative's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub sts_endpoint: Option<String>,
    /// Where the connection's own AWS identity comes from.
    pub credentials: AwsCredentials,
    /// Whether VcsAuthTokens may mint from this connection (default true). False keeps it usable
    /// only as another connection's `iamRole.connection`.
    #[serde(default = "yes")]
    pub available_for_build_steps: bool,
    /// Longest session, in seconds, a token may request (900 to 43200; default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 900, max = 43200))]
    pub max_session_duration: Option<i32>,
    /// Role ARNs (globs allowed, e.g. `arn:aws:iam::123456789012:role/ci-*`) a token may ask to
    /// assume with `spec.aws.roleArn`; none when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 100),
        inner(
            length(max = 2048),
            pattern(r"^arn:aws[a-z-]*:iam::[0-9*?]{1,12}:role/[A-Za-z0-9_+=,.@/*?-]+$")
        )
    )]
    pub allowed_role_arns: Option<Vec<String>>,
}

/// Which kind of ECR registry a connection logs in to.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EcrRepositoryType {
    /// The account's private registry in `region`.
    #[default]
    Private,
    /// ECR Public (`public.ecr.aws`).
    Public,
}

/// Amazon Elastic Container Registry: docker logins for the account's registry.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.repositoryType == 'public' || has(self.region)")
    .message("region is required for a private registry").field_path(".region"))]
pub struct Ecr {
    /// `private` (default) or `public`.
    #[serde(default)]
    pub repository_type: EcrRepositoryType,
    /// AWS region of the private registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), pattern(patterns::AWS_REGION))]
    pub region: Option<String>,
    /// ECR API endpoint URL. Default: `https://api.ecr.{region}.amazonaws.com` for a private
    /// registry, `https://api.ecr-public.us-east-1.amazonaws.com` for ECR Public. Set it for
    /// a VPC endpoint or an ECR-compatible emulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(patterns::HTTP_URL))]
    pub endpoint: Option<String>,
    /// Where the connection's AWS identity comes from.
    pub credentials: AwsCredentials,
}
