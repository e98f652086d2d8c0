//! `POST /app/installations/{installation_id}/access_tokens`: checks the requested repositories
//! and permissions against the installation and issues an opaque token.

use serde_json::{Map, Value, json};

use super::json;
use super::model::{Permissions, State, TokenInfo, level_rank};
use super::reply::Reply;
use super::time::rfc3339;

/// GitHub's 422 for a repository the installation cannot reach (or that does not exist).
pub(crate) const INACCESSIBLE_REPOSITORY: &str = "There is at least one repository that does not \
     exist or is not accessible to the parent installation.";
/// GitHub's 422 for permissions above the installation's.
pub(crate) const PERMISSIONS_NOT_GRANTED: &str =
    "The permissions requested are not granted to this installation.";
/// GitHub scopes a token to at most this many repositories.
const MAX_REPOSITORIES: usize = 500;

#[derive(Default)]
struct TokenRequest {
    repositories: Vec<String>,
    repository_ids: Vec<u64>,
    permissions: Permissions,
}

fn invalid(field: &str, value: &Value, expected: &str) -> Reply {
    Reply::error(
        422,
        &format!("Invalid request.\n\nFor 'properties/{field}', {value} is not {expected}."),
    )
}

fn list<T>(
    body: &Map<String, Value>,
    field: &str,
    item: fn(&Value) -> Option<T>,
    expected: &str,
) -> Result<Vec<T>, Reply> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| item(v).ok_or_else(|| invalid(field, v, expected)))
            .collect(),
        Some(other) => Err(invalid(field, other, "an array")),
    }
}

fn parse_request(body: &[u8]) -> Result<TokenRequest, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TokenRequest::default());
    }
    let problems = || Reply::error(400, "Problems parsing JSON");
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(problems());
    };
    let repositories = list(
        &body,
        "repositories",
        |v| v.as_str().map(str::to_string),
        "a string",
    )?;
    let repository_ids = list(&body, "repository_ids", Value::as_u64, "an integer")?;
    let permissions = match body.get("permissions") {
        None | Some(Value::Null) => Permissions::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(level) => Ok((k.clone(), level.to_string())),
                None => Err(invalid(&format!("permissions/{k}"), v, "a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(invalid("permissions", other, "an object")),
    };
    Ok(TokenRequest {
        repositories,
        repository_ids,
        permissions,
    })
}

/// A random token: `ghs_` and 36 alphanumerics. Clients must treat it as opaque.
pub(crate) fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 36];
    // The system RNG does not fail on supported platforms; zeros would still be a valid token.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let tail: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("ghs_{tail}")
}

/// Whether every requested level is within what the installation was granted.
fn within(requested: &Permissions, granted: &Permissions) -> bool {
    requested.iter().all(|(name, level)| {
        let have = granted.get(name).and_then(|l| level_rank(l));
        matches!((level_rank(level), have), (Some(want), Some(have)) if want <= have)
    })
}

pub(crate) fn create(state: &mut State, app_id: u64, id: &str, body: &[u8]) -> Reply {
    let Some(inst) = id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.installations.get(&id))
        .filter(|i| i.app_id == app_id)
    else {
        return Reply::not_found();
    };
    if inst.suspended {
        return Reply::error(403, "This installation has been suspended");
    }
    let request = match parse_request(body) {
        Ok(request) => request,
        Err(reply) => return reply,
    };
    let reachable = state.installation_repos(inst);
    let mut names: Vec<String> = Vec::new();
    let by_name = request
        .repositories
        .iter()
        .map(|name| reachable.iter().find(|r| r.name.eq_ignore_ascii_case(name)));
    let by_id = request
        .repository_ids
        .iter()
        .map(|id| reachable.iter().find(|r| r.id == *id));
    for found in by_name.chain(by_id) {
        let Some(repo) = found else {
            return Reply::error(422, INACCESSIBLE_REPOSITORY);
        };
        if !names.contains(&repo.name) {
            names.push(repo.name.clone());
        }
    }
    if names.len() > MAX_REPOSITORIES {
        return Reply::error(
            422,
            &format!("Too many repositories: at most {MAX_REPOSITORIES} may be requested."),
        );
    }
    if !within(&request.permissions, &inst.permissions) {
        return Reply::error(422, PERMISSIONS_NOT_GRANTED);
    }
    let mut permissions = request.permissions;
    if permissions.is_empty() {
        permissions = inst.permissions.clone();
    } else if inst.permissions.contains_key("metadata") {
        permissions
            .entry("metadata".to_string())
            .or_insert_with(|| "read".to_string());
    }
    let scoped = !names.is_empty();
    let mut body = json!({
        "permissions": permissions,
        "repository_selection": if scoped { "selected" } else { json::selection_name(&inst.selection) },
    });
    if scoped || matches!(inst.selection, super::model::RepoSelection::Selected(_)) {
        let repos: Vec<Value> = reachable
            .iter()
            .filter(|r| !scoped || names.contains(&r.name))
            .map(|r| json::repo(r, state))
            .collect();
        body["repositories"] = Value::Array(repos);
    }
    let now = state.now();
    let lifetime = i64::try_from(state.config.token_lifetime.as_secs()).unwrap_or(i64::MAX);
    let issued = TokenInfo {
        token: new_token(),
        installation_id: inst.id,
        app_id,
        repositories: scoped.then_some(names),
        permissions,
        issued_at: now,
        expires_at: now.saturating_add(lifetime),
        revoked: false,
    };
    body["token"] = Value::from(issued.token.clone());
    body["expires_at"] = Value::from(rfc3339(issued.expires_at));
    state.tokens.push(issued);
    state.mints += 1;
    Reply::json(201, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::model::perms;

    #[test]
    fn tokens_are_random_and_alphanumeric_after_the_prefix() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 40);
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn a_requested_level_must_not_exceed_the_granted_one() {
        let granted = perms([("contents", "write"), ("metadata", "read")]);
        assert!(within(&perms([("contents", "read")]), &granted));
        assert!(within(&perms([("contents", "write")]), &granted));
        assert!(!within(&perms([("contents", "admin")]), &granted));
        assert!(!within(&perms([("issues", "read")]), &granted));
        assert!(!within(&perms([("contents", "everything")]), &granted));
    }

    #[test]
    fn malformed_bodies_are_refused_like_github_does() {
        let status = |body: &[u8]| parse_request(body).err().map(|r| r.status);
        assert_eq!(status(b""), None);
        assert_eq!(status(b"{\"repositories\": [\"a\"]}"), None);
        assert_eq!(status(b"{not json"), Some(400));
        assert_eq!(status(b"[1]"), Some(400));
        assert_eq!(status(b"{\"repositories\": \"a\"}"), Some(422));
        assert_eq!(status(b"{\"repository_ids\": [\"x\"]}"), Some(422));
        assert_eq!(status(b"{\"permissions\": {\"contents\": 1}}"), Some(422));
    }
}
