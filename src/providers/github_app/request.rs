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

/// The account a token mints for: the connection's own (`ownerUrl`), or one its
/// `allowedOwners` lists. A token can never widen the connection's reach by naming an owner.
fn owner(
    asked: Option<&str>,
    pinned: Option<String>,
    allowed: Option<&[String]>,
) -> Result<String, ProviderError> {
    let listed = |o: &str| (allowed.unwrap_or_default().iter()).any(|p| scope::glob_matches(p, o));
    match (asked, pinned) {
        (Some(asked), Some(pinned)) if asked.eq_ignore_ascii_case(&pinned) => Ok(pinned),
        (Some(asked), _) if listed(asked) => Ok(asked.to_string()),
        (Some(asked), pinned) => Err(ProviderError::config(
            "OwnerNotAllowed",
            format!(
                "spec.github.owner: {asked} is not the connection's account ({}) and matches none of its allowedOwners",
                pinned.as_deref().unwrap_or("none set")
            ),
        )),
        (None, Some(pinned)) => Ok(pinned),
        (None, None) => Err(ProviderError::config(
            "OwnerUnknown",
            "spec.github.owner: not set, and the connection has no ownerUrl to default it from",
        )),
    }
}

/// Applies the connection's ceilings to a token's request, refusing what exceeds them before
/// GitHub is called.
pub fn plan(request: &GithubTokenRequest, app: &GithubApp) -> Result<GithubPlan, ProviderError> {
    let endpoints = github_endpoints("spec.githubApp.serverUrl", &app.server_url)?;
    let pinned = (app.owner_url.as_deref())
        .map(|url| owner_from_url(&endpoints, url))
        .transpose()?;
    let owner = owner(
        request.owner.as_deref(),
        pinned,
        app.allowed_owners.as_deref(),
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_token_mints_for_the_connections_own_account_by_default() {
        let acme = Some("acme".to_string());
        assert_eq!(owner(None, acme.clone(), None).unwrap(), "acme");
        assert_eq!(owner(Some("ACME"), acme, None).unwrap(), "acme");
    }

    #[test]
    fn a_token_naming_a_foreign_owner_is_refused_unless_the_connection_allows_it() {
        let acme = Some("acme".to_string());
        let err = owner(Some("victim"), acme.clone(), None).unwrap_err();
        assert_eq!(err.reason, "OwnerNotAllowed");
        assert_eq!(
            err.message,
            "spec.github.owner: victim is not the connection's account (acme) and matches none of its allowedOwners"
        );
        let partners = allowed(&["acme-*"]);
        assert_eq!(
            owner(Some("acme-labs"), acme.clone(), Some(&partners)).unwrap(),
            "acme-labs"
        );
        assert!(owner(Some("victim"), acme, Some(&partners)).is_err());
    }

    #[test]
    fn without_an_owner_url_only_listed_owners_can_be_named() {
        assert_eq!(owner(None, None, None).unwrap_err().reason, "OwnerUnknown");
        assert_eq!(
            owner(Some("acme"), None, None).unwrap_err().reason,
            "OwnerNotAllowed"
        );
        let listed = allowed(&["acme"]);
        assert_eq!(owner(Some("acme"), None, Some(&listed)).unwrap(), "acme");
    }
}
