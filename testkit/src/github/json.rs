//! GitHub's JSON shapes for accounts, apps, installations and repositories (the fields clients
//! read; URLs point at github.com and are never served).

use serde_json::{Value, json};

use super::model::{AppSpec, Installation, Owner, Repo, RepoSelection, Role, State};
use super::time::rfc3339;

const API: &str = "https://api.github.com";

pub(crate) fn account(owner: &Owner) -> Value {
    let login = &owner.login;
    json!({
        "login": login,
        "id": owner.id,
        "node_id": format!("MDQ6{}", owner.id),
        "type": owner.kind.as_str(),
        "site_admin": false,
        "url": format!("{API}/users/{login}"),
        "html_url": format!("https://github.com/{login}"),
    })
}

fn owner_json(state: &State, key: &str) -> Value {
    state.owners.get(key).map_or(Value::Null, account)
}

pub(crate) fn app(app: &AppSpec, state: &State) -> Value {
    let installations = state
        .installations
        .values()
        .filter(|i| i.app_id == app.id)
        .count();
    json!({
        "id": app.id,
        "slug": app.slug,
        "client_id": app.client_id,
        "node_id": format!("MDM6QXBw{}", app.id),
        "name": app.name,
        "description": "",
        "external_url": "https://patchbay.dev",
        "html_url": format!("https://github.com/apps/{}", app.slug),
        "created_at": rfc3339(0),
        "updated_at": rfc3339(0),
        "owner": Value::Null,
        "permissions": {"metadata": "read"},
        "events": [],
        "installations_count": installations,
    })
}

pub(crate) fn installation(inst: &Installation, state: &State) -> Value {
    let account = owner_json(state, &inst.owner);
    let slug = state.apps.get(&inst.app_id).map(|a| a.slug.clone());
    let id = inst.id;
    json!({
        "id": id,
        "account": account,
        "app_id": inst.app_id,
        "app_slug": slug,
        "target_id": account.get("id"),
        "target_type": account.get("type"),
        "permissions": inst.permissions,
        "repository_selection": selection_name(&inst.selection),
        "events": [],
        "single_file_name": Value::Null,
        "created_at": rfc3339(inst.created_at),
        "updated_at": rfc3339(inst.created_at),
        "suspended_at": if inst.suspended { Value::from(rfc3339(inst.created_at)) } else { Value::Null },
        "access_tokens_url": format!("{API}/app/installations/{id}/access_tokens"),
        "repositories_url": format!("{API}/installation/repositories"),
        "html_url": format!("https://github.com/settings/installations/{id}"),
    })
}

pub(crate) fn selection_name(selection: &RepoSelection) -> &'static str {
    match selection {
        RepoSelection::All => "all",
        RepoSelection::Selected(_) => "selected",
    }
}

pub(crate) fn repo(repo: &Repo, state: &State) -> Value {
    let owner = owner_json(state, &repo.owner);
    let login = owner
        .get("login")
        .and_then(Value::as_str)
        .unwrap_or(&repo.owner);
    let full_name = format!("{login}/{}", repo.name);
    json!({
        "id": repo.id,
        "node_id": format!("MDEwOlJlcG9zaXRvcnk{}", repo.id),
        "name": repo.name,
        "full_name": full_name,
        "private": true,
        "visibility": "private",
        "owner": owner,
        "html_url": format!("https://github.com/{full_name}"),
        "url": format!("{API}/repos/{full_name}"),
        "default_branch": "main",
        "archived": false,
        "disabled": false,
    })
}

/// The `permissions` object GitHub adds to a repository for the authenticated user.
pub(crate) fn role_permissions(role: Role) -> Value {
    json!({
        "admin": role >= Role::Admin,
        "maintain": role >= Role::Maintain,
        "push": role >= Role::Write,
        "triage": role >= Role::Triage,
        "pull": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_grants_the_permissions_below_it() {
        let write = role_permissions(Role::Write);
        assert_eq!(
            write,
            json!({"admin": false, "maintain": false, "push": true, "triage": true, "pull": true})
        );
        assert_eq!(role_permissions(Role::Read)["triage"], false);
        assert_eq!(role_permissions(Role::Maintain)["admin"], false);
        assert_eq!(role_permissions(Role::Admin)["admin"], true);
    }
}
