//! The credential a provider mints: what it holds, when it expires, the fingerprint that names
//! it in `status.tokenId`, and the format it is written in by default. `Debug` never shows the
//! secret parts.

use std::fmt;

use k8s_openapi::jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::api::token::SecretFormat;

const REDACTED: &str = "<redacted>";

/// A minted credential, as providers return it. `Debug` redacts the secret fields.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A GitHub installation token.
    GithubToken {
        /// The token (`ghs_...`).
        token: String,
        /// When GitHub expires it.
        expires_at: Timestamp,
        /// Host for `.git-credentials`, e.g. `github.com` or `ghe.example.com`.
        server_host: String,
    },
    /// AWS credentials.
    Aws {
        /// Access key ID (an identifier, not a secret).
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
        /// Session token of temporary credentials.
        session_token: Option<String>,
        /// Region the credentials are for.
        region: String,
        /// When temporary credentials expire; `None` for long-lived static keys.
        expires_at: Option<Timestamp>,
    },
    /// A docker registry login.
    DockerLogin {
        /// Registry host, the `auths` key (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
        registry: String,
        /// User name.
        username: String,
        /// Password.
        password: String,
        /// When the password expires; `None` when it does not.
        expires_at: Option<Timestamp>,
    },
    /// A bearer token a registry's token service issued (the Docker token protocol), for
    /// clients that accept a registry token (`registrytoken` in a docker config).
    RegistryToken {
        /// Registry host, the `auths` key.
        registry: String,
        /// The bearer token.
        token: String,
        /// When the token service expires it.
        expires_at: Timestamp,
    },
    /// An npm registry's settings, with its token unless access is anonymous.
    Npm {
        /// Registry URL with a trailing `/`.
        registry_url: String,
        /// The scope the registry serves (`@acme`), or every package.
        scope: Option<String>,
        /// The access token; `None` for anonymous access.
        token: Option<String>,
    },
    /// A Slack bot token.
    SlackBot {
        /// The token (`xoxb-...`).
        token: String,
    },
    /// An Azure DevOps personal access token.
    AzureDevOpsPat {
        /// The token.
        token: String,
        /// The organization or collection URL it is for.
        server_url: String,
    },
    /// An OAuth access token, from a user's grant or the application's own (client credentials).
    OAuth {
        /// The access token.
        access_token: String,
        /// When the provider expires it (counted from when the request was sent).
        expires_at: Timestamp,
        /// The user name git sends with it as a password (GitLab `oauth2`, Bitbucket Cloud
        /// `x-token-auth`, GitHub `x-access-token`); `None` for providers whose tokens go in a
        /// bearer header only (Bitbucket Data Center, Google, JetBrains Space).
        username: Option<&'static str>,
        /// The git server's base URL, for `.git-credentials`.
        server_url: String,
        /// The environment variable the service's tools read the token from, written as a key
        /// too (Slack's `SLACK_BOT_TOKEN`).
        variable: Option<&'static str>,
    },
    /// A Perforce login.
    Perforce {
        /// The server address (P4PORT).
        port: String,
        /// The user (P4USER).
        user: String,
        /// The password or ticket (P4PASSWD).
        password: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GithubToken {
                expires_at,
                server_host,
                ..
            } => f
                .debug_struct("GithubToken")
                .field("token", &REDACTED)
                .field("expires_at", expires_at)
                .field("server_host", server_host)
                .finish(),
            Self::Aws {
                access_key_id,
                session_token,
                region,
                expires_at,
                ..
            } => f
                .debug_struct("Aws")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &REDACTED)
                .field("session_token", &session_token.as_ref().map(|_| REDACTED))
                .field("region", region)
                .field("expires_at", expires_at)
                .finish(),
            Self::DockerLogin {
                registry,
                username,
                expires_at,
                ..
            } => f
                .debug_struct("DockerLogin")
                .field("registry", registry)
                .field("username", username)
                .field("password", &REDACTED)
                .field("expires_at", expires_at)
                .finish(),
            Self::RegistryToken {
                registry,
                expires_at,
                ..
            } => f
                .debug_struct("RegistryToken")
                .field("registry", registry)
                .field("token", &REDACTED)
                .field("expires_at", expires_at)
                .finish(),
            Self::Npm {
                registry_url,
                scope,
                token,
            } => f
                .debug_struct("Npm")
                .field("registry_url", registry_url)
                .field("scope", scope)
                .field("token", &token.as_ref().map(|_| REDACTED))
                .finish(),
            Self::SlackBot { .. } => f
                .debug_struct("SlackBot")
                .field("token", &REDACTED)
                .finish(),
            Self::AzureDevOpsPat { server_url, .. } => f
                .debug_struct("AzureDevOpsPat")
                .field("token", &REDACTED)
                .field("server_url", server_url)
                .finish(),
            Self::OAuth {
                expires_at,
                username,
                server_url,
                variable,
                ..
            } => f
                .debug_struct("OAuth")
                .field("access_token", &REDACTED)
                .field("expires_at", expires_at)
                .field("username", username)
                .field("server_url", server_url)
                .field("variable", variable)
                .finish(),
            Self::Perforce { port, user, .. } => f
                .debug_struct("Perforce")
                .field("port", port)
                .field("user", user)
                .field("password", &REDACTED)
                .finish(),
        }
    }
}

/// `sha256:` and the first 16 hex digits of the SHA-256 of `secret`: how `status.tokenId`
/// names a credential (see [`Credential::fingerprint`]).
pub fn fingerprint(secret: &str) -> String {
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    format!("sha256:{}", &digest[..16])
}

impl Credential {
    /// When the credential expires; `None` for credentials that do not.
    pub fn expires_at(&self) -> Option<Timestamp> {
        match self {
            Self::GithubToken { expires_at, .. }
            | Self::RegistryToken { expires_at, .. }
            | Self::OAuth { expires_at, .. } => Some(*expires_at),
            Self::Aws { expires_at, .. } | Self::DockerLogin { expires_at, .. } => *expires_at,
            Self::Npm { .. }
            | Self::SlackBot { .. }
            | Self::AzureDevOpsPat { .. }
            | Self::Perforce { .. } => None,
        }
    }

    /// `sha256:` and the first 16 hex digits of the SHA-256 of the secret part (the GitHub
    /// token, the AWS secret access key, the registry password; for anonymous npm access, the
    /// registry URL and scope): `status.tokenId`. Lets a user
    /// match a Secret to the status (`printf %s "$TOKEN" | sha256sum`) without revealing it.
    pub fn fingerprint(&self) -> String {
        let anonymous;
        let secret = match self {
            Self::GithubToken { token, .. }
            | Self::RegistryToken { token, .. }
            | Self::SlackBot { token }
            | Self::AzureDevOpsPat { token, .. }
            | Self::OAuth {
                access_token: token,
                ..
            }
            | Self::Npm {
                token: Some(token), ..
            } => token,
            Self::Aws {
                secret_access_key, ..
            } => secret_access_key,
            Self::DockerLogin { password, .. } | Self::Perforce { password, .. } => password,
            Self::Npm {
                registry_url,
                scope,
                token: None,
            } => {
                anonymous = format!("{registry_url} {}", scope.as_deref().unwrap_or_default());
                &anonymous
            }
        };
        fingerprint(secret)
    }

    /// The format used when `spec.secret.format` is not set.
    pub fn default_format(&self) -> SecretFormat {
        match self {
            Self::GithubToken { .. } => SecretFormat::BasicAuth,
            Self::Aws { .. } => SecretFormat::AwsCredentials,
            Self::DockerLogin { .. } | Self::RegistryToken { .. } => SecretFormat::DockerConfigJson,
            Self::Npm { .. } => SecretFormat::Npmrc,
            Self::SlackBot { .. } | Self::Perforce { .. } => SecretFormat::Opaque,
            Self::AzureDevOpsPat { .. } => SecretFormat::BasicAuth,
            Self::OAuth { username: None, .. } => SecretFormat::Opaque,
            Self::OAuth { .. } => SecretFormat::BasicAuth,
        }
    }

    /// What the credential is called in messages, and the formats that can hold it.
    pub(super) fn kind_and_formats(&self) -> (&'static str, &'static [SecretFormat]) {
        use SecretFormat::*;
        match self {
            Self::GithubToken { .. } => ("GitHub token", &[BasicAuth, GitCredentials, Opaque]),
            Self::Aws { .. } => ("AWS", &[AwsCredentials, Opaque]),
            Self::DockerLogin { .. } => ("docker login", &[DockerConfigJson]),
            Self::RegistryToken { .. } => ("registry token", &[DockerConfigJson, Opaque]),
            Self::Npm { .. } => ("npm registry", &[Npmrc]),
            Self::SlackBot { .. } => ("Slack bot token", &[Opaque]),
            Self::AzureDevOpsPat { .. } => (
                "Azure DevOps personal access token",
                &[BasicAuth, GitCredentials, Opaque],
            ),
            Self::Perforce { .. } => ("Perforce login", &[Opaque]),
            Self::OAuth { username: None, .. } => ("bearer-only OAuth access token", &[Opaque]),
            Self::OAuth { .. } => ("OAuth access token", &[BasicAuth, GitCredentials, Opaque]),
        }
    }
}
