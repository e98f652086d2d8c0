//! Permission and repository ceilings for GitHub installation tokens. Pure: the controller
//! feeds it the request, the connection's ceilings and what GitHub says about the user.
//!
//! A token's permissions are the intersection of three things:
//!
//! 1. the request (`spec.github.permissions`), or the installation's permissions when none is
//!    asked;
//! 2. the connection's `maxPermissions`: a request above it is refused, not silently lowered;
//! 3. with `spec.github.userToken`, the least the user holds across the requested repositories
//!    ([`lower_to_user`]).
//!
//! Repositories outside the connection's `allowedRepositories` are refused before GitHub is
//! called ([`check_repositories`]), with a message naming them, rather than an opaque 422.

use crate::api::connection::{PermissionLevel, Permissions};

/// Whether repository `name` matches `pattern`, ignoring case as GitHub does for repository
/// names. `*` matches any run of characters (including none), `?` exactly one.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    crate::glob::matches(&pattern.to_lowercase(), &name.to_lowercase())
}

/// The requested repositories that match none of the `allowed` patterns, in request order.
/// `None` allows every repository.
pub fn refused_repositories<'a>(
    requested: &'a [String],
    allowed: Option<&[String]>,
) -> Vec<&'a str> {
    let Some(allowed) = allowed else {
        return Vec::new();
    };
    requested
        .iter()
        .filter(|name| !allowed.iter().any(|pattern| glob_matches(pattern, name)))
        .map(String::as_str)
        .collect()
}

/// `Ok` when every requested repository is inside the connection's `allowedRepositories`,
/// otherwise [`ScopeError::RepositoriesNotAllowed`] naming the ones outside.
pub fn check_repositories(
    requested: &[String],
    allowed: Option<&[String]>,
) -> Result<(), ScopeError> {
    let refused = refused_repositories(requested, allowed);
    if refused.is_empty() {
        return Ok(());
    }
    Err(ScopeError::RepositoriesNotAllowed {
        names: refused.into_iter().map(str::to_owned).collect(),
    })
}

/// Why a GitHub token request cannot be served as asked. Messages name the field and the
/// offending repositories or permissions; they never carry a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Requested repositories match none of the connection's `allowedRepositories`.
    #[error("spec.github.repositories: {} {} outside the connection's allowedRepositories",
        names.join(", "), if names.len() == 1 { "is" } else { "are" })]
    RepositoriesNotAllowed {
        /// The refused repository names, in request order.
        names: Vec<String>,
    },
    /// Requested permissions exceed the connection's `maxPermissions`.
    #[error("spec.github.permissions: {}", describe_above(above))]
    PermissionsAboveCeiling {
        /// Each offending permission: its name, the level asked, and the ceiling's level for it
        /// (`None` when the ceiling does not name the permission at all).
        above: Vec<(String, PermissionLevel, Option<PermissionLevel>)>,
    },
    /// The user behind `spec.github.userToken` cannot see some requested repositories.
    #[error("spec.github.userToken: the user has no access to {}", repositories.join(", "))]
    UserLacksAccess {
        /// The repositories the user cannot access, in request order.
        repositories: Vec<String>,
    },
}

impl ScopeError {
    /// The condition reason (CamelCase) this error reports as.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::RepositoriesNotAllowed { .. } => "RepositoryNotAllowed",
            Self::PermissionsAboveCeiling { .. } => "PermissionNotAllowed",
            Self::UserLacksAccess { .. } => "UserLacksAccess",
        }
    }
}

fn describe_above(above: &[(String, PermissionLevel, Option<PermissionLevel>)]) -> String {
    above
        .iter()
        .map(|(name, asked, ceiling)| match ceiling {
            Some(c) => format!(
                "{name}: {} is above the connection's maxPermissions ({name}: {})",
                level_name(*asked),
                level_name(*c)
            ),
            None => format!(
                "{name}: {} is not among the connection's maxPermissions",
                level_name(*asked)
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The lowercase name GitHub and the API use for a permission level.
pub fn level_name(level: PermissionLevel) -> &'static str {
    match level {
        PermissionLevel::Read => "read",
        PermissionLevel::Write => "write",
        PermissionLevel::Admin => "admin",
    }
}

/// The permissions to ask GitHub for, given the request and the connection's `maxPermissions`.
///
/// | request | ceiling | result |
/// |---|---|---|
/// | none (or `{}`) | none | `None`: GitHub grants the installation's permissions |
/// | none (or `{}`) | set | the ceiling |
/// | set | none | the request |
/// | set, within the ceiling | set | the request |
/// | set, above the ceiling or naming a permission the ceiling lacks | set | refused |
///
/// A request above the ceiling is refused before GitHub is called, never silently lowered.
pub fn effective_permissions(
    requested: Option<&Permissions>,
    ceiling: Option<&Permissions>,
) -> Result<Option<Permissions>, ScopeError> {
    let requested = requested.filter(|r| !r.is_empty());
    match (requested, ceiling) {
        (None, ceiling) => Ok(ceiling.cloned()),
        (Some(requested), None) => Ok(Some(requested.clone())),
        (Some(requested), Some(ceiling)) => {
            let above: Vec<_> = requested
                .iter()
                .filter_map(|(name, &asked)| {
                    let cap = ceiling.get(name).copied();
                    (cap < Some(asked)).then(|| (name.clone(), asked, cap))
                })
                .collect();
            if above.is_empty() {
                Ok(Some(requested.clone()))
            } else {
                Err(ScopeError::PermissionsAboveCeiling { above })
            }
        }
    }
}

/// A user's role on a repository, as GitHub reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserRole {
    /// Repository administrator.
    Admin,
    /// Maintainer: manages the repository without admin rights.
    Maintain,
    /// Push access.
    Write,
    /// Manages issues and pull requests without write access to code.
    Triage,
    /// Pull access.
    Read,
}

/// The user's highest role from the `permissions` object of GitHub's `GET /repos/{owner}/{repo}`
/// (`{"admin": bool, "maintain": bool, "push": bool, "triage": bool, "pull": bool}`). `None`
/// when every flag is false or missing.
pub fn role_from_github(permissions: &serde_json::Value) -> Option<UserRole> {
    [
        ("admin", UserRole::Admin),
        ("maintain", UserRole::Maintain),
        ("push", UserRole::Write),
        ("triage", UserRole::Triage),
        ("pull", UserRole::Read),
    ]
    .into_iter()
    .find(|(flag, _)| permissions.get(flag).and_then(serde_json::Value::as_bool) == Some(true))
    .map(|(_, role)| role)
}

/// The highest permission level a token may carry for a user with `role`:
///
/// | GitHub role | highest permission level |
/// |---|---|
/// | admin | admin |
/// | maintain | write |
/// | write (push) | write |
/// | triage | read |
/// | read (pull) | read |
pub fn role_ceiling(role: UserRole) -> PermissionLevel {
    match role {
        UserRole::Admin => PermissionLevel::Admin,
        UserRole::Maintain | UserRole::Write => PermissionLevel::Write,
        UserRole::Triage | UserRole::Read => PermissionLevel::Read,
    }
}

/// Lowers `permissions` to the least the user holds across the repositories: every permission
/// is capped at the lowest [`role_ceiling`] among `roles` (`(repository, role)` pairs, `None`
/// when the user cannot access the repository). Any repository without a role refuses the
/// whole token with [`ScopeError::UserLacksAccess`].
///
/// `permissions` is whatever will be asked of GitHub: the effective request, or the
/// installation's permissions when no request was made. With no repositories (the API requires
/// at least one) nothing is lowered.
pub fn lower_to_user(
    permissions: &Permissions,
    roles: &[(String, Option<UserRole>)],
) -> Result<Permissions, ScopeError> {
    let lacking: Vec<String> = roles
        .iter()
        .filter(|(_, role)| role.is_none())
        .map(|(repo, _)| repo.clone())
        .collect();
    if !lacking.is_empty() {
        return Err(ScopeError::UserLacksAccess {
            repositories: lacking,
        });
    }
    let cap = roles
        .iter()
        .filter_map(|(_, role)| role.map(role_ceiling))
        .min();
    Ok(permissions
        .iter()
        .map(|(name, &level)| (name.clone(), cap.map_or(level, |cap| level.min(cap))))
        .collect())
}

#[cfg(test)]
mod tests;
