//! The AWS calls behind aws and ecr connections: STS sessions, ECR registry logins and IAM key
//! rotation. No Kubernetes here: callers hand in the keys and the endpoint, and get back a
//! [`Credential`] or a classified [`StsError`].
//!
//! ```text
//!   StaticKeys ──sts_client──▶ GetSessionToken ─────────────▶ Credential::Aws
//!       │                      AssumeRole (tags, External ID) ─▶ Credential::Aws ──▶ StaticKeys
//!       │                      GetCallerIdentity ─────────────▶ Identity   (Verified)   (chaining)
//!       ├──ecr_client────────▶ GetAuthorizationToken ─────────▶ Credential::DockerLogin
//!       ├──ecr_public_client─▶ GetAuthorizationToken ─────────▶ Credential::DockerLogin
//!       └──iam_client────────▶ GetUser / CreateAccessKey / DeleteAccessKey   (Rotate key)
//! ```
//!
//! Every client is built from explicit inputs only (region, endpoint URL, static keys): nothing
//! is read from the environment, `~/.aws` or instance metadata, so a Connection can never borrow
//! the operator's own identity by accident. Every call is bounded by [`OPERATION_TIMEOUT`].

mod bounded;
mod ecr;
mod errors;
mod iam;
mod request;
mod session;

pub use bounded::MAX_ANSWER;
pub use ecr::{ECR_PUBLIC_REGISTRY, docker_login, ecr_login, ecr_public_login, registry_host};
pub use errors::StsError;
pub use iam::{create_access_key, current_user, delete_access_key, list_access_keys};
pub use request::{MAX_SESSION_TAGS, effective_duration, role_allowed, session_name, session_tags};
pub use session::{AssumeRoleInput, Identity, assume_role, caller_identity, get_session_token};

use std::fmt;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::output::Credential;

/// The longest any single AWS call may take, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest one attempt of a call may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest establishing a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per call (the SDK's standard retry mode: throttling and transient errors).
pub const MAX_ATTEMPTS: u32 = 3;

/// Access keys a client signs with: an IAM user's long-lived pair, or temporary credentials
/// (with a session token). `Debug` redacts the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    /// The access key ID (`AKIA...` or `ASIA...`); an identifier, not a secret.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl StaticKeys {
    /// Long-lived keys of an IAM user.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The keys inside minted AWS credentials, to sign the next call of a chain (an `iamRole`
    /// whose source is itself an `iamRole`). `None` for other credentials.
    pub fn from_credential(credential: &Credential) -> Option<Self> {
        match credential {
            Credential::Aws {
                access_key_id,
                secret_access_key,
                session_token,
                ..
            } => Some(Self {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                session_token: session_token.clone(),
            }),
            _ => None,
        }
    }

    fn sdk_credentials(&self) -> aws_sdk_sts::config::Credentials {
        aws_sdk_sts::config::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "patchbay",
        )
    }
}

fn timeouts() -> aws_sdk_sts::config::timeout::TimeoutConfig {
    aws_sdk_sts::config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

macro_rules! client_fn {
    ($(#[$doc:meta])* $name:ident, $sdk:ident) => {
        $(#[$doc])*
        ///
        /// Signs with `keys` only, talks to `endpoint_url` only (trusting the operator's and
        /// `ca_bundle`'s CAs, through the environment's proxy), and bounds every call by
        /// [`OPERATION_TIMEOUT`]; never reads credentials from the environment or `~/.aws`.
        pub fn $name(
            region: &str,
            endpoint_url: &str,
            keys: &StaticKeys,
            ca_bundle: Option<&super::CaBundle>,
        ) -> $sdk::Client {
            let http = super::network::process().aws(ca_bundle);
            let config = $sdk::Config::builder()
                .http_client(http)
                .behavior_version($sdk::config::BehaviorVersion::latest())
                .region($sdk::config::Region::new(region.to_string()))
                .endpoint_url(endpoint_url)
                .credentials_provider(keys.sdk_credentials())
                .timeout_config(timeouts())
                .interceptor(bounded::BoundedAnswers)
                .retry_config(
                    $sdk::config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS),
                )
                .build();
            $sdk::Client::from_conf(config)
        }
    };
}

client_fn!(
    /// An STS client for `region` (the signing region) at `endpoint_url`
    /// (see [`sts_endpoint`](super::aws::sts_endpoint)).
    sts_client,
    aws_sdk_sts
);
client_fn!(
    /// An ECR client for the private registries of `region` at `endpoint_url`
    /// (see [`ecr_endpoint`]).
    ecr_client,
    aws_sdk_ecr
);
client_fn!(
    /// An ECR Public client. ECR Public's API lives in `us-east-1` only (see
    /// [`ECR_PUBLIC_REGION`] and [`ecr_public_endpoint`]).
    ecr_public_client,
    aws_sdk_ecrpublic
);
client_fn!(
    /// An IAM client. IAM is global: sign with its partition's region (see [`iam_region`]) and
    /// use [`iam_endpoint`].
    iam_client,
    aws_sdk_iam
);

/// The only region ECR Public's API (and its GetAuthorizationToken) is served from.
pub const ECR_PUBLIC_REGION: &str = "us-east-1";

fn partition_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// The ECR API endpoint of a region, e.g. `https://api.ecr.eu-west-1.amazonaws.com`.
pub fn ecr_endpoint(region: &str) -> String {
    format!("https://api.ecr.{region}.{}", partition_suffix(region))
}

/// The ECR Public API endpoint.
pub fn ecr_public_endpoint() -> String {
    format!("https://api.ecr-public.{ECR_PUBLIC_REGION}.amazonaws.com")
}

/// The region IAM requests are signed for in the partition of `region`.
pub fn iam_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "cn-north-1"
    } else if region.starts_with("us-gov-") {
        "us-gov-west-1"
    } else {
        "us-east-1"
    }
}

/// The global IAM endpoint of the partition of `region`.
pub fn iam_endpoint(region: &str) -> String {
    if region.starts_with("us-gov-") {
        "https://iam.us-gov.amazonaws.com".to_string()
    } else {
        format!("https://iam.{}", partition_suffix(region))
    }
}

/// An SDK timestamp as the operator's timestamp type.
fn timestamp(t: &aws_sdk_sts::primitives::DateTime) -> Option<Timestamp> {
    Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
}

#[cfg(test)]
mod tests;
