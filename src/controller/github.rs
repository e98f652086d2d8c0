//! Minting GitHub App installation tokens for a VcsAuthToken: the effective request (owner,
//! repositories, permissions within the connection's ceilings, lowered to a user's), then the
//! calls to GitHub.

use std::collections::BTreeMap;

use jsonwebtoken::EncodingKey;

use crate::api::connection::{GithubApp, Permissions};
use crate::api::token::{GithubTokenRequest, PersonalAccessTokenSource};
use crate::output::Credential;
use crate::providers::ConfigError;
use crate::providers::github_app::client::{App, GithubClient, GithubError};
use crate::providers::github_app::{github_endpoints, owner_from_url};
use crate::scope::{self, UserRole};

/// A token request with every ceiling applied, ready to send to GitHub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// REST API base.
    pub api: String,
    /// Host for `.git-credentials`.
    pub host: String,
    /// Account owning the repositories.
    pub owner: String,
    /// Repository names as requested.
    pub repositories: Vec<String>,
    /// Permissions to ask for; `None`: the installation's.
    pub permissions: Option<BTreeMap<String, String>>,
}

impl Plan {
    /// The parts of the request that, when they change, need a new token.
    pub fn hash_parts(&self) -> Vec<String> {
        let mut parts = vec![
            self.api.clone(),
            self.owner.clone(),
            self.repositories.join(","),
        ];
        if let Some(p) = &self.permissions {
            parts.extend(p.iter().map(|(k, v)| format!("{k}={v}")));
        }
        parts
    }
}

fn levels(p: &Permissions) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::to_value(v)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// Applies the connection's ceilings to a token's request, refusing what exceeds them before
/// GitHub is called.
pub fn plan(request: &GithubTokenRequest, app: &GithubApp) -> Result<Plan, ConfigError> {
    let endpoints = github_endpoints("spec.githubApp.serverUrl", &app.server_url)?;
    let owner = match (&request.owner, &app.owner_url) {
        (Some(owner), _) => owner.clone(),
        (None, Some(url)) => owner_from_url(&endpoints, url)?,
        (None, None) => {
            return Err(ConfigError::new(
                "OwnerUnknown",
                "spec.github.owner: not set, and the connection has no ownerUrl to default it from",
            ));
        }
    };
    let refused =
        scope::refused_repositories(&request.repositories, app.allowed_repositories.as_deref());
    if !refused.is_empty() {
        let e = scope::ScopeError::RepositoriesNotAllowed {
            names: refused.iter().map(|s| s.to_string()).collect(),
        };
        return Err(ConfigError::new(e.reason(), e.to_string()));
    }
    let permissions =
        scope::effective_permissions(request.permissions.as_ref(), app.max_permissions.as_ref())
            .map_err(|e| ConfigError::new(e.reason(), e.to_string()))?;
    let host = endpoints
        .web
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    Ok(Plan {
        api: endpoints.api,
        host,
        owner,
        repositories: request.repositories.clone(),
        permissions: permissions.as_ref().map(levels),
    })
}

/// What GitHub granted, for the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    /// Permissions as granted.
    pub permissions: BTreeMap<String, String>,
    /// Repositories as granted.
    pub repositories: Vec<String>,
    /// Whether a user's token lowered the permissions.
    pub pat_source: PersonalAccessTokenSource,
}

/// Why minting failed: a problem the user must fix, or a GitHub failure worth retrying.
#[derive(Debug)]
pub enum MintError {
    /// Needs a change from the user (no retry until something changes).
    Config(ConfigError),
    /// GitHub failed or refused; retried with backoff.
    Github(GithubError),
    /// Reading an input from the Kubernetes API failed; retried with backoff.
    Kube(String),
}

/// Mints an installation token for `plan`.
pub async fn mint(
    client: &GithubClient,
    plan: &Plan,
    app: &GithubApp,
    key: EncodingKey,
    pem: &[u8],
    user_token: Option<&str>,
) -> Result<(Credential, Granted), MintError> {
    let app_ref = App::new(&plan.api, &app.app_id, key, pem);
    let installation = match app.installation_id {
        Some(id) => id as u64,
        None => client
            .installation_id(&app_ref, &plan.owner)
            .await
            .map_err(MintError::Github)?,
    };
    let mut permissions = plan.permissions.clone();
    let mut pat_source = PersonalAccessTokenSource::None;
    if let Some(user_token) = user_token {
        pat_source = PersonalAccessTokenSource::UserProvided;
        let mut roles: Vec<(String, Option<UserRole>)> = Vec::new();
        for repo in &plan.repositories {
            let role = client
                .user_role(&plan.api, user_token, &plan.owner, repo)
                .await
                .map_err(MintError::Github)?;
            roles.push((repo.clone(), role));
        }
        let base = match &permissions {
            Some(p) => p.clone(),
            None => client
                .installation_permissions(&app_ref, installation)
                .await
                .map_err(MintError::Github)?,
        };
        let parsed: Permissions = base
            .iter()
            .filter_map(|(k, v)| {
                serde_json::from_value(serde_json::Value::String(v.clone()))
                    .ok()
                    .map(|l| (k.clone(), l))
            })
            .collect();
        let lowered = scope::lower_to_user(&parsed, &roles)
            .map_err(|e| MintError::Config(ConfigError::new(e.reason(), e.to_string())))?;
        permissions = Some(levels(&lowered));
    }
    let minted = match client
        .create_token(
            &app_ref,
            installation,
            &plan.repositories,
            permissions.as_ref(),
        )
        .await
    {
        Err(e @ (GithubError::Unauthorized(_) | GithubError::NotFound(_))) => {
            client.forget_installation(&app_ref, &plan.owner);
            return Err(MintError::Github(e));
        }
        other => other.map_err(MintError::Github)?,
    };
    let granted = Granted {
        permissions: minted.permissions.clone(),
        repositories: if minted.repositories.is_empty() {
            plan.repositories.clone()
        } else {
            minted.repositories.clone()
        },
        pat_source,
    };
    let credential = Credential::GithubToken {
        token: minted.token,
        expires_at: minted.expires_at,
        server_host: plan.host.clone(),
    };
    Ok((credential, granted))
}
