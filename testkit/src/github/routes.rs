//! The endpoints: which route a request is, who it authenticates as, and what it answers.

use hyper::{HeaderMap, Method};
use serde_json::{Value, json};

use super::auth::{Issuer, Jwt, JwtError, credential};
use super::json;
use super::model::{RepoSelection, State, TokenInfo};
use super::reply::Reply;
use super::route;
use super::tokens;

/// A recognised endpoint and its path parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    GetApp,
    ListInstallations,
    GetInstallation(&'a str),
    CreateToken(&'a str),
    OrgInstallation(&'a str),
    UserInstallation(&'a str),
    RepoInstallation(&'a str, &'a str),
    RevokeToken,
    InstallationRepos,
    GetRepo(&'a str, &'a str),
    GetUser,
    ManifestForm(Option<&'a str>),
    ConvertManifest(&'a str),
}

impl<'a> Route<'a> {
    /// The route for a method and a path without the `/api/v3` prefix.
    pub(crate) fn parse(method: &Method, path: &'a str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let route = match (method.as_str(), segments.as_slice()) {
            ("GET", ["app"]) => Self::GetApp,
            ("GET", ["app", "installations"]) => Self::ListInstallations,
            ("GET", ["app", "installations", id]) => Self::GetInstallation(id),
            ("POST", ["app", "installations", id, "access_tokens"]) => Self::CreateToken(id),
            ("GET", ["orgs", org, "installation"]) => Self::OrgInstallation(org),
            ("GET", ["users", user, "installation"]) => Self::UserInstallation(user),
            ("GET", ["repos", owner, repo, "installation"]) => Self::RepoInstallation(owner, repo),
            ("DELETE", ["installation", "token"]) => Self::RevokeToken,
            ("GET", ["installation", "repositories"]) => Self::InstallationRepos,
            ("GET", ["repos", owner, repo]) => Self::GetRepo(owner, repo),
            ("GET", ["user"]) => Self::GetUser,
            ("POST", ["settings", "apps", "new"]) => Self::ManifestForm(None),
            ("POST", ["organizations", org, "settings", "apps", "new"]) => {
                Self::ManifestForm(Some(org))
            }
            ("POST", ["app-manifests", code, "conversions"]) => Self::ConvertManifest(code),
            _ => return None,
        };
        Some(route)
    }

    /// The counter name (one of the [`route`] constants).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::GetApp => route::GET_APP,
            Self::ListInstallations => route::LIST_INSTALLATIONS,
            Self::GetInstallation(_) => route::GET_INSTALLATION,
            Self::CreateToken(_) => route::CREATE_TOKEN,
            Self::OrgInstallation(_) => route::ORG_INSTALLATION,
            Self::UserInstallation(_) => route::USER_INSTALLATION,
            Self::RepoInstallation(..) => route::REPO_INSTALLATION,
            Self::RevokeToken => route::REVOKE_TOKEN,
            Self::InstallationRepos => route::INSTALLATION_REPOS,
            Self::GetRepo(..) => route::GET_REPO,
            Self::GetUser => route::GET_USER,
            Self::ManifestForm(_) => route::MANIFEST_FORM,
            Self::ConvertManifest(_) => route::CONVERT_MANIFEST,
        }
    }
}

/// Answers a recognised request.
pub(crate) fn handle(
    state: &mut State,
    route: Route<'_>,
    headers: &HeaderMap,
    query: &str,
    body: &[u8],
) -> Reply {
    match route {
        Route::ManifestForm(org) => super::manifests::register(state, org, query, body),
        Route::ConvertManifest(code) => super::manifests::convert(state, code),
        Route::RevokeToken => revoke(state, headers),
        Route::InstallationRepos => installation_repos(state, headers),
        Route::GetRepo(owner, name) => get_repo(state, headers, owner, name),
        Route::GetUser => get_user(state, headers),
        jwt_route => match app_from_jwt(state, headers) {
            Ok(app_id) => {
                if let Some((_, jwt)) = credential(headers) {
                    state.jwts.insert(jwt.to_string());
                }
                handle_as_app(state, app_id, jwt_route, body)
            }
            Err(error) => error.reply(),
        },
    }
}

/// The app a request's `Authorization: Bearer <jwt>` proves to be.
fn app_from_jwt(state: &State, headers: &HeaderMap) -> Result<u64, JwtError> {
    let token = match credential(headers) {
        Some((scheme, token)) if scheme == "bearer" => token,
        _ => return Err(JwtError::Undecodable),
    };
    let jwt = Jwt::decode(token)?;
    let app = match jwt.issuer()? {
        Issuer::AppId(id) => state.apps.get(&id),
        Issuer::ClientId(client_id) => state.apps.values().find(|a| a.client_id == client_id),
    }
    .ok_or(JwtError::UnknownApp)?;
    jwt.verify(&app.public_key_der, state.now())?;
    Ok(app.id)
}

fn handle_as_app(state: &mut State, app_id: u64, route: Route<'_>, body: &[u8]) -> Reply {
    let of_app = |state: &State, pred: &dyn Fn(&super::model::Installation) -> bool| {
        state
            .installations
            .values()
            .find(|i| i.app_id == app_id && pred(i))
            .map_or_else(Reply::not_found, |i| {
                Reply::json(200, json::installation(i, state))
            })
    };
    match route {
        Route::GetApp => match state.apps.get(&app_id) {
            Some(app) => Reply::json(200, json::app(app, state)),
            None => JwtError::UnknownApp.reply(),
        },
        Route::ListInstallations => {
            let list: Vec<Value> = state
                .installations
                .values()
                .filter(|i| i.app_id == app_id)
                .map(|i| json::installation(i, state))
                .collect();
            Reply::json(200, Value::Array(list))
        }
        Route::GetInstallation(id) => {
            let id = id.parse::<u64>().ok();
            of_app(state, &|i| Some(i.id) == id)
        }
        Route::OrgInstallation(org) => {
            let is_org = state
                .owners
                .get(&org.to_ascii_lowercase())
                .is_some_and(|o| o.kind == super::model::AccountType::Organization);
            if !is_org {
                return Reply::not_found();
            }
            of_app(state, &|i| i.owner.eq_ignore_ascii_case(org))
        }
        Route::UserInstallation(user) => of_app(state, &|i| i.owner.eq_ignore_ascii_case(user)),
        Route::RepoInstallation(owner, name) => match state.repo(owner, name) {
            Some(repo) => of_app(state, &|i| State::covers(i, repo)),
            None => Reply::not_found(),
        },
        Route::CreateToken(id) => tokens::create(state, app_id, id, body),
        _ => Reply::not_found(),
    }
}

/// The live installation token in the request, or `401 Bad credentials`.
fn installation_token(state: &State, headers: &HeaderMap) -> Result<TokenInfo, Reply> {
    credential(headers)
        .and_then(|(_, token)| state.live_token(token))
        .cloned()
        .ok_or_else(Reply::bad_credentials)
}

fn revoke(state: &mut State, headers: &HeaderMap) -> Reply {
    let token = match installation_token(state, headers) {
        Ok(token) => token.token,
        Err(reply) => return reply,
    };
    if let Some(issued) = state.tokens.iter_mut().find(|t| t.token == token) {
        issued.revoked = true;
        state.revokes += 1;
    }
    Reply::empty(204)
}

fn installation_repos(state: &State, headers: &HeaderMap) -> Reply {
    let token = match installation_token(state, headers) {
        Ok(token) => token,
        Err(reply) => return reply,
    };
    let repos: Vec<Value> = state
        .token_repos(&token)
        .into_iter()
        .map(|r| json::repo(r, state))
        .collect();
    let selection = match (
        &token.repositories,
        state.installations.get(&token.installation_id),
    ) {
        (None, Some(inst)) => json::selection_name(&inst.selection),
        _ => json::selection_name(&RepoSelection::Selected(Vec::new())),
    };
    Reply::json(
        200,
        json!({"total_count": repos.len(), "repository_selection": selection, "repositories": repos}),
    )
}

fn get_repo(state: &State, headers: &HeaderMap, owner: &str, name: &str) -> Reply {
    let Some((_, credential)) = credential(headers) else {
        return Reply::not_found();
    };
    let repo = state.repo(owner, name);
    if let Some(token) = state.live_token(credential) {
        let reachable = repo.filter(|r| state.token_repos(token).iter().any(|t| t.id == r.id));
        return reachable.map_or_else(Reply::not_found, |r| Reply::json(200, json::repo(r, state)));
    }
    let Some(user) = state.users.get(credential) else {
        return Reply::bad_credentials();
    };
    match repo.and_then(|r| user.roles.get(&r.id).map(|role| (r, *role))) {
        Some((repo, role)) => {
            let mut body = json::repo(repo, state);
            body["permissions"] = json::role_permissions(role);
            Reply::json(200, body)
        }
        None => Reply::not_found(),
    }
}

fn get_user(state: &State, headers: &HeaderMap) -> Reply {
    let Some((_, credential)) = credential(headers) else {
        return Reply::error(401, "Requires authentication");
    };
    if state.live_token(credential).is_some() {
        return Reply::error(403, "Resource not accessible by integration");
    }
    match state.users.get(credential) {
        Some(user) => Reply::json(
            200,
            json!({"login": user.login, "id": user.id, "type": "User"}),
        ),
        None => Reply::bad_credentials(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_githubs_route_templates() {
        let post = Method::POST;
        let get = Method::GET;
        let cases = [
            (
                &post,
                "/app/installations/12/access_tokens",
                Some(route::CREATE_TOKEN),
            ),
            (&get, "/app/installations/12", Some(route::GET_INSTALLATION)),
            (
                &get,
                "/repos/acme/widgets/installation",
                Some(route::REPO_INSTALLATION),
            ),
            (&get, "/repos/acme/widgets", Some(route::GET_REPO)),
            (
                &Method::DELETE,
                "/installation/token",
                Some(route::REVOKE_TOKEN),
            ),
            (&get, "/app/", Some(route::GET_APP)),
            (&post, "/app", None),
            (&get, "/repos/acme", None),
        ];
        for (method, path, want) in cases {
            assert_eq!(
                Route::parse(method, path).map(|r| r.name()),
                want,
                "{method} {path}"
            );
        }
    }
}
