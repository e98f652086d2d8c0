//! npm registries: an `.npmrc` with the registry (for every package, or for one scope) and,
//! unless access is anonymous, its token. The token is long-lived: copied only where the
//! connection allows. The live check is `GET /-/whoami` (`/-/ping` when anonymous).

use async_trait::async_trait;
use reqwest::StatusCode;

use super::http::{self, AUTHENTICATION_FAILED};
use super::url::{base, parse_http};
use super::{
    Env, Minted, Plan, Provider, ProviderError, Request, SecretValues, Services, Validated,
    Verification, block,
};
use crate::api::connection::NpmRegistry;
use crate::api::token::SecretFormat;
use crate::api::{Connection, ConnectionKind, ConnectionSpec};
use crate::conditions::reasons;
use crate::output::Credential;

/// The registry URL as `.npmrc` keys it: with a trailing `/`.
pub fn registry_url(field: &str, raw: &str) -> Result<String, ProviderError> {
    Ok(format!("{}/", base(&parse_http(field, raw)?, "")))
}

/// The connection's token, if it has one: one line of printable text (it goes into `.npmrc`).
fn token<'a>(
    npm: &NpmRegistry,
    secrets: &'a SecretValues,
) -> Result<Option<&'a str>, ProviderError> {
    let Some(r) = &npm.access_token else {
        return Ok(None);
    };
    let field = "spec.npmRegistry.accessToken";
    let token = secrets.text(field, r)?.trim();
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ProviderError::config(
            reasons::INVALID_SECRET_VALUE,
            format!(
                "{field}: Secret {:?} key {:?} must hold one token without spaces or line breaks",
                r.name, r.key
            ),
        ));
    }
    Ok(Some(token))
}

/// The live check: who the registry says the token belongs to.
async fn check(
    conn: &Connection,
    env: &Env<'_>,
    secrets: &SecretValues,
) -> Result<String, ProviderError> {
    let npm = block(&conn.spec.npm_registry, "npmRegistry")?;
    let url = registry_url("spec.npmRegistry.registryUrl", &npm.registry_url)?;
    let client = http::client(env.ca_bundle)?;
    let Some(token) = token(npm, secrets)? else {
        let what = format!("{url}-/ping");
        let answer = http::send(client.get(&what), &url).await?;
        return match answer.status.is_success() {
            true => Ok(format!("{url} answers; access is anonymous")),
            false => Err(answer.unexpected(&what)),
        };
    };
    let what = format!("{url}-/whoami");
    let answer = http::send(client.get(&what).bearer_auth(token), &url).await?;
    let refused = || {
        ProviderError::transient(
            AUTHENTICATION_FAILED,
            format!(
                "{url} does not accept the token in spec.npmRegistry.accessToken (HTTP {}): it \
                 was revoked, has expired, or is for another registry",
                answer.status.as_u16()
            ),
        )
    };
    match answer.status {
        s if s.is_success() => {
            let user = answer.json()["username"].as_str().map(str::to_owned);
            // Some registries answer an unknown token with 200 and no user name.
            let user = user.filter(|u| !u.is_empty()).ok_or_else(refused)?;
            let user = http::printable(&user, 100);
            Ok(format!("{url} knows the token as user {user:?}"))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(refused()),
        _ => Err(answer.unexpected(&what)),
    }
}

pub(super) struct NpmRegistryProvider;

#[async_trait]
impl Provider for NpmRegistryProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::NpmRegistry
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        secrets: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let npm = block(&spec.npm_registry, "npmRegistry")?;
        let url = registry_url("spec.npmRegistry.registryUrl", &npm.registry_url)?;
        token(npm, secrets)?;
        let scope = npm
            .scope
            .as_deref()
            .map(|s| format!(" for {s}"))
            .unwrap_or_default();
        let auth = if npm.access_token.is_some() {
            "with a token"
        } else {
            "anonymously"
        };
        Ok(Validated {
            summary: format!("npm registry {url}{scope}, {auth}"),
        })
    }

    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        let npm = block(&request.connection.spec.npm_registry, "npmRegistry")?;
        if npm.access_token.is_none() {
            return Ok(Plan::projection(
                "npm registry settings",
                SecretFormat::Npmrc,
            ));
        }
        Plan::copied(request, "npm token", SecretFormat::Npmrc)
    }

    async fn verify(
        &self,
        conn: &Connection,
        env: &Env<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Verification {
        check(conn, env, secrets).await.into()
    }

    async fn mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Result<Minted, ProviderError> {
        let npm = block(&request.connection.spec.npm_registry, "npmRegistry")?;
        Ok(Minted::credential(Credential::Npm {
            registry_url: registry_url("spec.npmRegistry.registryUrl", &npm.registry_url)?,
            scope: npm.scope.clone(),
            token: token(npm, secrets)?.map(str::to_owned),
        }))
    }
}
