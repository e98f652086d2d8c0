//! GitHub Apps on github.com and GitHub Enterprise Server: installation tokens scoped to the
//! requested repositories and permissions (within the connection's ceilings, lowered to a
//! user's when `userToken` is given), revoked when superseded or deleted; the live check is
//! `GET /app` plus the installation.

pub mod client;
mod endpoints;
mod request;

pub use endpoints::{
    GithubEndpoints, check_permission_names, check_private_key, github_endpoints, owner_from_url,
};
pub use request::{GithubPlan, plan};

use std::collections::BTreeMap;

use async_trait::async_trait;
use kube::ResourceExt;

use super::{
    CaBundle, Env, Granted, Inputs, Lifetime, Minted, Plan, Provider, ProviderError, Request,
    Revoked, SecretRead, SecretValues, Services, Stored, Validated, Verification, block, identity,
};
use crate::api::connection::GithubApp;
use crate::api::token::{PersonalAccessTokenSource, SecretFormat};
use crate::api::{Connection, ConnectionKind, ConnectionSpec};
use crate::output::Credential;
use crate::scope::UserRole;
use client::{App, GithubClient, GithubError};

const KEY_FIELD: &str = "spec.githubApp.privateKey";

/// Why a live check of a GitHub App failed: a reason that tells a bad key, an unknown App, a
/// missing installation and an unreachable server apart.
fn verify_reason(e: &GithubError) -> &'static str {
    match e {
        GithubError::Unauthorized(_) => "KeyRejected",
        GithubError::AppNotFound(_) => "AppNotFound",
        GithubError::NotFound(_) => "InstallationNotFound",
        GithubError::Unreachable { cause, .. } if super::network::is_certificate_failure(cause) => {
            crate::conditions::reasons::CERTIFICATE_NOT_TRUSTED
        }
        GithubError::Unreachable { .. } => "Unreachable",
        GithubError::RateLimited { .. } => "RateLimited",
        GithubError::Unprocessable(_)
        | GithubError::Http { .. }
        | GithubError::InvalidResponse(_) => "GithubError",
    }
}

fn app_of(spec: &ConnectionSpec) -> Result<&GithubApp, ProviderError> {
    block(&spec.github_app, "githubApp")
}

/// The App as GitHub knows it, with its key from the connection's Secret.
fn app_ref(app: &GithubApp, api: &str, secrets: &SecretValues) -> Result<App, ProviderError> {
    let pem = secrets.get(KEY_FIELD, &app.private_key)?;
    let key = check_private_key(KEY_FIELD, pem)?;
    Ok(App::new(api, &app.app_id, key, pem))
}

/// The live check ("Test connection"): `GET /app` with the App JWT, then the installation
/// (by `installationId`, or looked up for `ownerUrl`).
async fn verify(
    github: &GithubClient,
    app: &GithubApp,
    secrets: &SecretValues,
) -> Result<String, ProviderError> {
    let endpoints = github_endpoints("spec.githubApp.serverUrl", &app.server_url)?;
    let target = app_ref(app, &endpoints.api, secrets)?;
    let failed = |e: GithubError| ProviderError {
        reason: verify_reason(&e),
        ..ProviderError::from(e)
    };
    let slug = github.get_app(&target).await.map_err(failed)?;
    let installation = match (app.installation_id, &app.owner_url) {
        (Some(id), _) => {
            (github.installation_permissions(&target, id as u64).await).map_err(failed)?;
            format!(", installation {id}")
        }
        (None, Some(url)) => {
            let owner = owner_from_url(&endpoints, url)?;
            let id = (github.installation_id(&target, &owner).await).map_err(failed)?;
            format!(", installation {id} on {owner}")
        }
        (None, None) => String::new(),
    };
    Ok(format!("app {slug}{installation} at {}", endpoints.api))
}

/// The permissions of `plan` lowered to the user's role on each requested repository.
async fn lowered_to_user(
    github: &GithubClient,
    app: &App,
    installation: u64,
    plan: &GithubPlan,
    user_token: &str,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut roles: Vec<(String, Option<UserRole>)> = Vec::new();
    for repo in &plan.repositories {
        let role = (github.user_role(&plan.api, user_token, &plan.owner, repo)).await?;
        roles.push((repo.clone(), role));
    }
    let base = match &plan.permissions {
        Some(p) => p.clone(),
        None => github.installation_permissions(app, installation).await?,
    };
    request::lower(&base, &roles)
}

/// The annotation with which a token's owner accepts that its user token now goes to another
/// GitHub API (its value: that API's base URL).
pub const ACCEPT_API_ANNOTATION: &str = "patchbay.dev/accept-github-api";

/// A user's token goes only to the GitHub API the token's credential was last minted from: if
/// the token now resolves to a connection on another server (a same-named connection created
/// nearer to it, say), the user token is not sent there until the token's owner accepts it
/// with [`ACCEPT_API_ANNOTATION`].
fn user_token_stays(token: &crate::api::VcsAuthToken, api: &str) -> Result<(), ProviderError> {
    let status = token.status.as_ref();
    // The last mint's record outlives a withdrawn credential; the current issuer covers
    // statuses written before that record existed.
    let minted_at = status
        .and_then(|s| s.last_issuer.as_ref().or(s.issuer.as_ref()))
        .and_then(|i| i.endpoint.as_deref());
    let accepted = token
        .annotations()
        .get(ACCEPT_API_ANNOTATION)
        .map(String::as_str);
    // A credential was minted but where is not recorded (a status adopted from the Secret after
    // a lost status write, or a mint from a kind with no API of its own): unknown is not the
    // same server.
    let issued = status.is_some_and(|s| s.token_id.is_some() || s.revision > 0);
    let before = match minted_at {
        Some(before) => before,
        None if issued => "the API its status should record (no GitHub API is recorded)",
        None => return Ok(()),
    };
    if before == api || accepted == Some(api) {
        return Ok(());
    }
    Err(ProviderError::config(
        "UserTokenServerChanged",
        format!(
            "spec.github.userToken: the token now resolves to a connection at {api}, not {before} where its user token was used; annotate the token {ACCEPT_API_ANNOTATION}={api} to send it there"
        ),
    ))
}

pub(super) struct GithubAppProvider;

#[async_trait]
impl Provider for GithubAppProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::GithubApp
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        secrets: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let app = app_of(spec)?;
        let endpoints = github_endpoints("spec.githubApp.serverUrl", &app.server_url)?;
        let owner = app
            .owner_url
            .as_deref()
            .map(|u| owner_from_url(&endpoints, u))
            .transpose()?;
        if let Some(max) = &app.max_permissions {
            check_permission_names("spec.githubApp.maxPermissions", max.keys())?;
        }
        check_private_key(KEY_FIELD, secrets.get(KEY_FIELD, &app.private_key)?)?;
        let mut summary = format!("GitHub App {} at {}", app.app_id, endpoints.api);
        if let Some(owner) = owner {
            summary.push_str(&format!(", installed on {owner}"));
        }
        Ok(Validated { summary })
    }

    /// Only the App's private key signs: its Secret is the one input.
    fn inputs(&self, conn: &Connection, _env: &Env<'_>) -> Result<Inputs, ProviderError> {
        let app = app_of(&conn.spec)?;
        Ok(Inputs {
            reads: vec![SecretRead::new(
                conn.namespace().unwrap_or_default(),
                &app.private_key.name,
            )],
            depends_on: identity(conn),
        })
    }

    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        let app = app_of(&request.connection.spec)?;
        let token = request.token;
        let github = block(&token.spec.github, "github")?;
        let planned = plan(github, app)?;
        let mut hash_parts = planned.hash_parts();
        let mut reads = Vec::new();
        if let Some(u) = &github.user_token {
            user_token_stays(token, &planned.api)?;
            hash_parts.push(format!("user:{}/{}", u.name, u.key));
            reads.push(SecretRead::new(
                token.namespace().unwrap_or_default(),
                &u.name,
            ));
        }
        Ok(Plan {
            hash_parts,
            default_format: SecretFormat::BasicAuth,
            lifetime: Lifetime::Expiring,
            reads,
            grant: None,
            late: None,
        })
    }

    async fn verify(
        &self,
        conn: &Connection,
        env: &Env<'_>,
        secrets: &SecretValues,
        services: &Services,
    ) -> Verification {
        let checked = async {
            let app = app_of(&conn.spec)?;
            let github = client(services, env.ca_bundle)?;
            verify(&github, app, secrets).await
        };
        checked.await.into()
    }

    async fn mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
        services: &Services,
    ) -> Result<Minted, ProviderError> {
        let github = &client(services, request.env.ca_bundle)?;
        let app = app_of(&request.connection.spec)?;
        let token = request.token;
        let asked = block(&token.spec.github, "github")?;
        let plan = plan(asked, app)?;
        let app_ref = app_ref(app, &plan.api, secrets)?;
        let user_token = match &asked.user_token {
            Some(r) => {
                let namespace = token.namespace().unwrap_or_default();
                Some(secrets.text_in("spec.github.userToken", &namespace, r)?)
            }
            None => None,
        };
        let installation = match app.installation_id {
            Some(id) => id as u64,
            None => github.installation_id(&app_ref, &plan.owner).await?,
        };
        let (permissions, pat_source) = match user_token {
            Some(user) => {
                let lowered = lowered_to_user(github, &app_ref, installation, &plan, user).await?;
                (Some(lowered), PersonalAccessTokenSource::UserProvided)
            }
            None => (plan.permissions.clone(), PersonalAccessTokenSource::None),
        };
        let repositories = &plan.repositories;
        let minted =
            match (github.create_token(&app_ref, installation, repositories, permissions.as_ref()))
                .await
            {
                Err(e @ (GithubError::Unauthorized(_) | GithubError::NotFound(_))) => {
                    github.forget_installation(&app_ref, &plan.owner);
                    return Err(e.into());
                }
                other => other?,
            };
        let lowered = pat_source == PersonalAccessTokenSource::UserProvided;
        let granted = Granted {
            permissions: minted.permissions.clone(),
            repositories: if minted.repositories.is_empty() {
                plan.repositories.clone()
            } else {
                minted.repositories.clone()
            },
            pat_source: Some(pat_source),
            note: lowered.then(|| "permissions lowered to the user's".to_string()),
        };
        Ok(Minted {
            credential: Credential::GithubToken {
                token: minted.token,
                expires_at: minted.expires_at,
                server_host: plan.host.clone(),
            },
            granted: Some(granted),
            endpoint: Some(plan.api),
            write_back: Vec::new(),
            failed: None,
        })
    }

    fn revocable(&self) -> bool {
        true
    }

    async fn revoke(
        &self,
        stored: &Stored<'_>,
        services: &Services,
    ) -> Result<Revoked, ProviderError> {
        let token = stored.data.get("token").map(|t| String::from_utf8_lossy(t));
        let api = stored.endpoint;
        let (Some(token), Some(api)) = (token, api) else {
            return Ok(Revoked::NotRevocable);
        };
        client(services, stored.ca_bundle)?
            .revoke(api, &token)
            .await?;
        Ok(Revoked::Revoked)
    }
}

/// The GitHub client for calls that trust the operator's and `ca_bundle`'s CAs.
fn client(
    services: &Services,
    ca_bundle: Option<&CaBundle>,
) -> Result<GithubClient, ProviderError> {
    let http = super::network::process().http(ca_bundle, GithubClient::http_builder)?;
    Ok(services.github.with_http(http))
}

#[cfg(test)]
mod tests;
