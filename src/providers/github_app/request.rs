//! A GitHub token request within the connection's ceilings: the owner, repositories and
//! permissions to ask GitHub for, and the lowering of permissions to a user's. Pure.

use std::collections::BTreeMap;

use super::endpoints::{github_endpoints, owner_from_url};
use crate::api::connection::{GithubApp, Permissions};
use crate::api::token::GithubTokenRequest;
use crate::providers::ProviderError;
use crate::scope::{self, UserRole};

/// A token request with every ceiling applied, ready to send to GitHub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GithubPlan {
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

impl GithubPlan {
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

/// Permission levels as GitHub spells them.
pub fn levels(p: &Permissions) -> BTreeMap<String, String> {
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
pub fn plan(request: &GithubTokenRequest, app: &GithubApp) -> Result<GithubPlan, ProviderError> {
    let endpoints = github_endpoints("spec.githubApp.serverUrl", &app.server_url)?;
    let owner = match (&request.owner, &app.owner_url) {
        (Some(owner), _) => owner.clone(),
        (None, Some(url)) => owner_from_url(&endpoints, url)?,
        (None, None) => {
            return Err(ProviderError::config(
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
        return Err(ProviderError::config(e.reason(), e.to_string()));
    }
    let permissions =
        scope::effective_permissions(request.permissions.as_ref(), app.max_permissions.as_ref())
            .map_err(|e| ProviderError::config(e.reason(), e.to_string()))?;
    let host = endpoints
        .web
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    Ok(GithubPlan {
        api: endpoints.api,
        host,
        owner,
        repositories: request.repositories.clone(),
        permissions: permissions.as_ref().map(levels),
    })
}

/// `base` permissions lowered to what the user's `roles` on the requested repositories allow.
pub fn lower(
    base: &BTreeMap<String, String>,
    roles: &[(String, Option<UserRole>)],
) -> Result<BTreeMap<String, String>, ProviderError> {
    let parsed: Permissions = base
        .iter()
        .filter_map(|(k, v)| {
            serde_json::from_value(serde_json::Value::String(v.clone()))
                .ok()
                .map(|l| (k.clone(), l))
        })
        .collect();
    let lowered = scope::lower_to_user(&parsed, roles)
        .map_err(|e| ProviderError::config(e.reason(), e.to_string()))?;
    Ok(levels(&lowered))
}
