//! A token's output Secret as the pipeline meets it: whether patchbay may write it, the
//! credential it holds now, and writing a new one in its place.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use super::context::Context;
use super::error::Error;
use super::status::token_key;
use crate::api::token::SecretFormat;
use crate::api::{VcsAuthToken, VcsAuthTokenStatus};
use crate::conditions::reasons;
use crate::output::{self, Ownership, annotations};
use crate::providers::ProviderError;
use crate::renewal::SecretFacts;

/// The name of the token's output Secret.
pub fn output_name(token: &VcsAuthToken) -> String {
    (token.spec.secret.as_ref())
        .and_then(|s| s.name.clone())
        .unwrap_or_else(|| token.name_any())
}

/// The token's output format, or the provider's default for its request.
pub fn format_of(token: &VcsAuthToken, default: SecretFormat) -> SecretFormat {
    (token.spec.secret.as_ref())
        .and_then(|s| s.format)
        .unwrap_or(default)
}

/// The token's output Secret and its API, when patchbay may write it; otherwise the conflict.
/// For a token that `never_minted`, a Secret the Secret watch knows to be absent is not read
/// (the write then creates it, which never replaces a Secret that appeared meanwhile).
pub async fn owned(
    ctx: &Context,
    token: &VcsAuthToken,
    secret_name: &str,
    never_minted: bool,
) -> Result<Result<(Api<Secret>, Option<Secret>), ProviderError>, Error> {
    let namespace = token.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = if never_minted && ctx.secret_names.absent(&namespace, secret_name) {
        None
    } else {
        (secrets.get_opt(secret_name).await)
            .map_err(|e| Error::kube("read Secret", secret_name, e))?
    };
    if let Ownership::Foreign(why) = output::ownership(existing.as_ref(), token) {
        return Ok(Err(ProviderError::config(
            reasons::SECRET_CONFLICT,
            format!(
                "spec.secret.name: Secret {namespace}/{secret_name} exists and {why}; patchbay never overwrites it"
            ),
        )));
    }
    Ok(Ok((secrets, existing)))
}

/// How often a new credential's Secret write is tried: a 409 (the Secret changed since it was
/// read) is answered by reading it again, a 429 or 5xx by a short pause. A credential already
/// minted is worth a few tries before it is given up.
const WRITE_ATTEMPTS: u32 = 8;

/// Creates the Secret, or replaces patchbay's own one in place, at the version `existing` was
/// read at. On a conflict the Secret is read again and written again while patchbay still owns
/// it (or it is gone); never over a Secret that became someone else's. Returns the
/// resourceVersion written.
pub async fn write(
    api: &Api<Secret>,
    token: &VcsAuthToken,
    existing: Option<&Secret>,
    secret: Secret,
) -> Result<Option<String>, kube::Error> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let mut existing = existing.cloned();
    let mut attempt = 1;
    loop {
        let result = write_once(api, existing.as_ref(), secret.clone()).await;
        let code = match &result {
            Err(kube::Error::Api(status)) if attempt < WRITE_ATTEMPTS => status.code,
            _ => return result,
        };
        match code {
            409 => {
                existing = api.get_opt(&name).await?;
                if let Ownership::Foreign(_) = output::ownership(existing.as_ref(), token) {
                    return result;
                }
            }
            429 | 500.. => {
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await
            }
            _ => return result,
        }
        attempt += 1;
    }
}

async fn write_once(
    api: &Api<Secret>,
    existing: Option<&Secret>,
    mut secret: Secret,
) -> Result<Option<String>, kube::Error> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let written = match existing {
        None => api.create(&PostParams::default(), &secret).await?,
        // A Secret's type cannot change in place: a new format replaces the Secret.
        Some(old) if old.type_ != secret.type_ => {
            api.delete(&name, &Default::default()).await?;
            api.create(&PostParams::default(), &secret).await?
        }
        Some(old) => {
            secret.metadata.resource_version = old.metadata.resource_version.clone();
            api.replace(&name, &PostParams::default(), &secret).await?
        }
    };
    Ok(written.metadata.resource_version)
}

/// The credential currently in an owned Secret, as renewal and revocation need it.
pub struct Current {
    /// The data keys of the format are present and non-empty.
    pub has_credential: bool,
    /// The Secret's data.
    pub data: BTreeMap<String, Vec<u8>>,
    /// The Secret's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The Secret's resourceVersion.
    pub resource_version: Option<String>,
}

impl Current {
    /// The secret a revocation needs: the `token` key (GitHub, registry tokens), else the
    /// `access_token` key (OAuth).
    pub fn secret(&self) -> Option<&Vec<u8>> {
        self.data
            .get("token")
            .or_else(|| self.data.get("access_token"))
    }

    /// The credential in `secret`, read as `format`.
    pub fn of(secret: &Secret, format: SecretFormat) -> Self {
        let data = secret
            .data
            .as_ref()
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect());
        Self {
            has_credential: output::has_credential(secret, format),
            data: data.unwrap_or_default(),
            annotations: secret.metadata.annotations.clone().unwrap_or_default(),
            resource_version: secret.metadata.resource_version.clone(),
        }
    }

    /// What renewal needs to know about it.
    pub fn facts(&self) -> SecretFacts<'_> {
        let a = |k: &str| self.annotations.get(k).map(String::as_str);
        let ts = |k: &str| a(k).and_then(|v| v.parse::<Timestamp>().ok());
        SecretFacts {
            has_credential: self.has_credential,
            request_hash: a(annotations::REQUEST_HASH),
            connection_hash: a(annotations::CONNECTION_HASH),
            renew_requested_at: a(annotations::RENEW_REQUESTED_AT),
            issued_at: ts(annotations::ISSUED_AT),
            expires_at: ts(annotations::EXPIRES_AT),
        }
    }

    /// When the credential expires, if it is still valid at `now`.
    pub fn valid_until(&self, now: Timestamp) -> Option<Timestamp> {
        let expires = self.facts().expires_at?;
        (self.has_credential && expires > now).then_some(expires)
    }

    /// The fingerprint of the credential (`status.tokenId`).
    pub fn token_id(&self) -> Option<&str> {
        self.annotations
            .get(annotations::TOKEN_ID)
            .map(String::as_str)
    }
}

/// How long after a mint the cached token may lack the status that recorded it: the token
/// watch brings the operator's own status write well within this, so a reconcile that meets
/// the Secret's credential but not its record waits for the watch rather than reading the
/// token from the API server.
const CATCH_UP: SignedDuration = SignedDuration::from_secs(10);
/// How far ahead of this clock an issue time may be and still count as just issued (the clocks
/// of the replicas that wrote it may differ a little).
const CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(5);
/// When a reconcile that waits for the cache to catch up is run again, if no watch event (the
/// status write arriving) wakes it before.
pub const CATCH_UP_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a credential issued at `issued` (as the Secret says) is recent enough at `now` that
/// the cache may not have caught up with its record. An issue time far in the future (the
/// Secret is the tenant's to edit) is not recent: it cannot make a reconcile wait forever.
pub fn just_issued(issued: Timestamp, now: Timestamp) -> bool {
    let since = now.duration_since(issued);
    since < CATCH_UP && since > -CLOCK_SKEW
}

/// The token's status as the API server holds it, when the cached copy predates the credential
/// in the Secret. While that credential is only moments old the cache is taken to be catching
/// up with the operator's own last write (`None`: the reconcile waits for the watch to bring
/// it, with no read and no write from the stale copy); later the token is read from the API
/// server. A status that never recorded the
/// Secret's credential (the status write after a mint failed, or the record was lost) adopts it
/// from the Secret: its fingerprint, issue and expiry times, and one more revision.
pub async fn fresh_status(
    ctx: &Context,
    token: &VcsAuthToken,
    status: VcsAuthTokenStatus,
    current: Option<&Current>,
) -> Result<Option<VcsAuthTokenStatus>, Error> {
    let Some(id) = current.and_then(Current::token_id) else {
        return Ok(Some(status));
    };
    // The Secret's credential is the one the status records if both the fingerprint and the
    // issue time agree: a provider may hand out the same credential twice (moto does).
    let issued_at = current.and_then(|c| c.facts().issued_at);
    let issued = issued_at.map(|t| t.as_second());
    let records = |s: &VcsAuthTokenStatus| {
        let recorded = s.issued_at.as_ref().map(|t| t.0.as_second());
        s.token_id.as_deref() == Some(id) && (issued.is_none() || recorded >= issued)
    };
    if records(&status) {
        return Ok(Some(status));
    }
    if issued_at.is_some_and(|t| just_issued(t, Timestamp::now())) {
        return Ok(None);
    }
    let live = super::status::live(ctx, token, &token_key(token)).await?;
    let mut fresh = live.status.unwrap_or_default();
    fresh.connection_ref = status.connection_ref;
    if !records(&fresh) {
        let facts = current.map(Current::facts).unwrap_or_default();
        fresh.token_id = Some(id.to_string());
        fresh.issued_at = facts.issued_at.map(Time).or(fresh.issued_at);
        fresh.expires_at = facts.expires_at.map(Time);
        fresh.renew_at = None;
        // The status now describes this version of the Secret, if it holds a credential and
        // says when it was issued; otherwise the next look reads the Secret again.
        fresh.secret_resource_version = current
            .filter(|c| c.has_credential && facts.issued_at.is_some())
            .and_then(|c| c.resource_version.clone());
        fresh.revision += 1;
    }
    Ok(Some(fresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    #[test]
    fn a_credential_issued_seconds_ago_waits_for_the_cache_to_catch_up() {
        assert!(just_issued(at(0), at(0)));
        assert!(just_issued(at(0), at(9)));
        assert!(
            just_issued(at(3), at(0)),
            "a replica's clock a little ahead"
        );
    }

    #[test]
    fn a_credential_issued_long_ago_or_far_ahead_is_read_from_the_api_server() {
        assert!(!just_issued(at(0), at(10)));
        assert!(!just_issued(at(0), at(3_600)));
        assert!(
            !just_issued(at(3_600), at(0)),
            "an issue time a tenant set in the future cannot make a reconcile wait forever"
        );
    }
}
