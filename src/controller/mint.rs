//! Keeping a VcsAuthToken's Secret filled: decide whether to mint (renewal), mint, write the
//! Secret (never one patchbay does not own), record the status, revoke what was superseded,
//! and revoke on deletion.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::github::{self, MintError};
use super::token::{key, publish_ready, write_status};
use super::{Context, Error};
use crate::api::token::{ConnectionRef, PersonalAccessTokenSource, SecretFormat};
use crate::api::{ConditionStatus, Connection, SecretKeyRef, VcsAuthToken, VcsAuthTokenStatus};
use crate::conditions::{self, Desired, types};
use crate::output::{self, Credential, Ownership, SecretInputs, annotations};
use crate::providers::ConfigError;
use crate::providers::github_app::check_private_key;
use crate::renewal::{self, Decision, Observed, SecretFacts};

/// The shortest wait before looking at a token again.
const MIN_REQUEUE: Duration = Duration::from_secs(1);

pub(super) fn time(t: Timestamp) -> Time {
    Time(t)
}

pub(super) fn output_name(token: &VcsAuthToken) -> String {
    token
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_else(|| token.name_any())
}

pub(super) fn format_of(token: &VcsAuthToken, credential_default: SecretFormat) -> SecretFormat {
    token
        .spec
        .secret
        .as_ref()
        .and_then(|s| s.format)
        .unwrap_or(credential_default)
}

/// Reads a Secret key in `namespace`, as text; a missing Secret or key is the user's to fix.
pub(super) async fn read_key(
    ctx: &Context,
    namespace: &str,
    field: &str,
    r: &SecretKeyRef,
) -> Result<(String, String), MintError> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = api
        .get_opt(&r.name)
        .await
        .map_err(|e| MintError::Kube(e.to_string()))?
        .ok_or_else(|| {
            MintError::Config(ConfigError::new(
                "SecretNotFound",
                format!("{field}: Secret {:?} does not exist in {namespace}", r.name),
            ))
        })?;
    let version = secret.metadata.resource_version.clone().unwrap_or_default();
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .ok_or_else(|| {
            MintError::Config(ConfigError::new(
                "SecretKeyNotFound",
                format!("{field}: Secret {:?} has no key {:?}", r.name, r.key),
            ))
        })?;
    Ok((value, version))
}

/// Fills a GitHub token's Secret from a githubApp connection.
pub async fn github(
    token: &VcsAuthToken,
    conn: Arc<Connection>,
    at: ConnectionRef,
    status: VcsAuthTokenStatus,
    ctx: &Context,
) -> Result<Action, Error> {
    let key = key(token);
    let namespace = token.namespace().unwrap_or_default();
    let now = Timestamp::now();
    let (Some(app), Some(request)) = (conn.spec.github_app.as_ref(), token.spec.github.as_ref())
    else {
        return Ok(Action::await_change());
    };
    let plan = match github::plan(request, app) {
        Ok(plan) => plan,
        Err(e) => return report(ctx, token, status, Outcome::Refused(e), None).await,
    };
    // What a new token would be asked for, and what it would be minted with.
    let format = format_of(token, SecretFormat::BasicAuth);
    let secret_name = output_name(token);
    let mut request_parts = vec![
        at.namespace.clone(),
        at.name.clone(),
        format!("{format:?}"),
        secret_name.clone(),
    ];
    request_parts.extend(plan.hash_parts());
    if let Some(u) = &request.user_token {
        request_parts.push(format!("user:{}/{}", u.name, u.key));
    }
    let request_hash =
        renewal::request_hash(&request_parts.iter().map(String::as_str).collect::<Vec<_>>());
    let (pem, key_version) = match read_key(
        ctx,
        &at.namespace,
        "spec.githubApp.privateKey",
        &app.private_key,
    )
    .await
    {
        Ok(found) => found,
        Err(e) => return failed(ctx, token, status, e, None).await,
    };
    let conn_uid = conn.uid().unwrap_or_default();
    let conn_generation = conn.meta().generation.unwrap_or_default().to_string();
    let connection_hash = renewal::request_hash(&[&conn_uid, &conn_generation, &key_version]);

    let (secrets, existing) = match owned_secret(ctx, token, &secret_name).await? {
        Ok(found) => found,
        Err(e) => return report(ctx, token, status, Outcome::Refused(e), None).await,
    };
    let current = existing.as_ref().map(|s| current_credential(s, format));
    let mut status = fresh_status(ctx, token, status, current.as_ref()).await?;
    let observed = observe(
        token,
        &status,
        now,
        current.as_ref().map(|c| c.facts()),
        (&request_hash, &connection_hash),
    );
    let (renew_before, annotation, jitter) = (
        observed.renew_before,
        observed.renew_requested_at,
        observed.jitter,
    );
    let decision = renewal::decide(&observed);
    let reason = match decision {
        Decision::Keep {
            renew_at,
            expires_at,
        } => {
            status.connection_ref = Some(at);
            status.secret_name = Some(secret_name);
            if let Some((renew_at, message)) = keep_recorded(&status, expires_at) {
                return report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await;
            }
            status.renew_at = Some(time(renew_at));
            status.expires_at = Some(time(expires_at));
            let message = format!("credential valid until {expires_at}; renewing at {renew_at}");
            return report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await;
        }
        Decision::Mint { reason, message } => (reason, message),
    };
    let (mint_reason, why) = (reason.0.as_str(), reason.1.clone());
    if let Some(wait) = ctx.held_for(&key) {
        // A recent failure holds provider calls back; whatever woke us must not bypass that.
        return Ok(Action::requeue(wait));
    }
    info!(reason = mint_reason, "minting a GitHub installation token");
    let key_parsed = match check_private_key("spec.githubApp.privateKey", pem.as_bytes()) {
        Ok(k) => k,
        Err(e) => return failed(ctx, token, status, MintError::Config(e), current.as_ref()).await,
    };
    let user_token = match &request.user_token {
        Some(r) => match read_key(ctx, &namespace, "spec.github.userToken", r).await {
            Ok((value, _)) => Some(value),
            Err(e) => return failed(ctx, token, status, e, current.as_ref()).await,
        },
        None => None,
    };
    let (credential, granted) = match github::mint(
        &ctx.github,
        &plan,
        app,
        key_parsed,
        pem.as_bytes(),
        user_token.as_deref(),
    )
    .await
    {
        Ok(minted) => minted,
        Err(e) => return failed(ctx, token, status, e, current.as_ref()).await,
    };
    let rendered = match output::render(&credential, format) {
        Ok(r) => r,
        Err(e) => {
            let e = ConfigError::new("InvalidSecretFormat", e.to_string());
            return report(ctx, token, status, Outcome::Refused(e), None).await;
        }
    };
    let expires_at = credential.expires_at().unwrap_or(now);
    let token_id = credential.fingerprint();
    let connection = format!("{}/{}", at.namespace, at.name);
    let mut secret = output::build_secret(SecretInputs {
        token,
        rendered,
        connection: (&at.namespace, &at.name),
        request_hash: &request_hash,
        connection_hash: &connection_hash,
        issued_at: now,
        expires_at: Some(expires_at),
        renew_requested_at: annotation,
        token_id: &token_id,
    });
    secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(GITHUB_API_ANNOTATION.into(), plan.api.clone());
    write_secret(&secrets, existing.as_ref(), secret)
        .await
        .map_err(|e| Error::kube("write Secret", &secret_name, e))?;
    // The new credential is in place: the one it replaces can go.
    if let Some(old) = current.as_ref().and_then(|c| c.token.clone())
        && credential_token(&credential) != Some(old.as_str())
    {
        revoke(ctx, token, &plan.api, &old, "superseded").await;
    }
    let renew_at = renewal::renew_at(now, expires_at, renew_before, jitter, Some(now));
    status.connection_ref = Some(at);
    status.token_id = Some(token_id);
    status.permissions = granted.permissions;
    status.repositories = granted.repositories;
    status.personal_access_token_source = Some(granted.pat_source);
    status.issued_at = Some(time(now));
    status.expires_at = Some(time(expires_at));
    status.renew_at = Some(time(renew_at));
    status.revision += 1;
    status.secret_name = Some(secret_name);
    let mut message = format!(
        "minted ({mint_reason}: {why}); valid until {expires_at}, renewing at {renew_at} (via {connection})"
    );
    if let Some(problem) = renewal::lifetime_problem(now, expires_at) {
        message = format!("{message}; {problem}");
    }
    if status.personal_access_token_source == Some(PersonalAccessTokenSource::UserProvided) {
        message.push_str("; permissions lowered to the user's");
    }
    report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await
}

/// When the status already records this credential as valid (after a restart, or on any event
/// that changes nothing), its renewal time and message: keeping them writes nothing. Recomputed
/// values would differ in sub-second detail and cost a status write per token.
pub(super) fn keep_recorded(
    status: &VcsAuthTokenStatus,
    expires_at: Timestamp,
) -> Option<(Timestamp, String)> {
    let ready = status
        .conditions
        .iter()
        .find(|c| c.is_true(types::READY) && c.reason == "TokenValid")?;
    let recorded = status.expires_at.as_ref()?.0;
    let renew_at = status.renew_at.as_ref()?.0;
    (recorded.as_second() == expires_at.as_second()).then(|| (renew_at, ready.message.clone()))
}

/// The token's output Secret and its API, when patchbay may write it; otherwise the conflict.
pub(super) async fn owned_secret(
    ctx: &Context,
    token: &VcsAuthToken,
    secret_name: &str,
) -> Result<Result<(Api<Secret>, Option<Secret>), ConfigError>, Error> {
    let namespace = token.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets
        .get_opt(secret_name)
        .await
        .map_err(|e| Error::kube("read Secret", secret_name, e))?;
    if let Ownership::Foreign(why) = output::ownership(existing.as_ref(), token) {
        return Ok(Err(ConfigError::new(
            "SecretConflict",
            format!(
                "spec.secret.name: Secret {namespace}/{secret_name} exists and {why}; patchbay never overwrites it"
            ),
        )));
    }
    Ok(Ok((secrets, existing)))
}

/// What renewal observes for a token: the Secret's facts, the `(request, connection)` hashes,
/// and the token's renewBefore, renewal request, jitter and last mint.
pub(super) fn observe<'a>(
    token: &'a VcsAuthToken,
    status: &VcsAuthTokenStatus,
    now: Timestamp,
    secret: Option<SecretFacts<'a>>,
    (request_hash, connection_hash): (&'a str, &'a str),
) -> Observed<'a> {
    let renew_before =
        (token.spec.renew_before.as_deref()).and_then(|d| renewal::parse_go_duration(d).ok());
    Observed {
        now,
        secret,
        request_hash,
        connection_hash,
        renew_requested_at: (token.annotations().get(annotations::RENEW_REQUESTED_AT))
            .map(String::as_str),
        last_mint: status.issued_at.as_ref().map(|t| t.0),
        renew_before,
        jitter: renewal::jitter_for(&key(token)),
    }
}

fn credential_token(c: &Credential) -> Option<&str> {
    match c {
        Credential::GithubToken { token, .. } => Some(token),
        _ => None,
    }
}

/// The credential currently in an owned Secret, as renewal and revocation need it.
pub(super) struct Current {
    token: Option<String>,
    has_credential: bool,
    annotations: BTreeMap<String, String>,
}

impl Current {
    pub(super) fn facts(&self) -> SecretFacts<'_> {
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

    fn valid_until(&self, now: Timestamp) -> Option<Timestamp> {
        let expires = self.facts().expires_at?;
        (self.has_credential && expires > now).then_some(expires)
    }
}

/// The token's status as the API server holds it, when the cached copy predates the credential
/// in the Secret (the cache has not caught up with our own last write): writing status from the
/// stale copy would drop what that write recorded. A status that lost its record altogether gets
/// the Secret's token id back.
pub(super) async fn fresh_status(
    ctx: &Context,
    token: &VcsAuthToken,
    status: VcsAuthTokenStatus,
    current: Option<&Current>,
) -> Result<VcsAuthTokenStatus, Error> {
    let Some(id) = current.and_then(|c| c.annotations.get(annotations::TOKEN_ID)) else {
        return Ok(status);
    };
    if status.token_id.as_deref() == Some(id.as_str()) {
        return Ok(status);
    }
    let api: Api<VcsAuthToken> =
        Api::namespaced(ctx.client.clone(), &token.namespace().unwrap_or_default());
    let live = api
        .get(&token.name_any())
        .await
        .map_err(|e| Error::kube("read", &key(token), e))?;
    let mut fresh = live.status.unwrap_or_default();
    fresh.connection_ref = status.connection_ref;
    fresh.token_id.get_or_insert_with(|| id.clone());
    Ok(fresh)
}

pub(super) fn current_credential(secret: &Secret, format: SecretFormat) -> Current {
    Current {
        token: secret
            .data
            .as_ref()
            .and_then(|d| d.get("token"))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned()),
        has_credential: output::has_credential(secret, format),
        annotations: secret.metadata.annotations.clone().unwrap_or_default(),
    }
}

/// Creates the Secret, or replaces patchbay's own one in place.
pub(super) async fn write_secret(
    api: &Api<Secret>,
    existing: Option<&Secret>,
    mut secret: Secret,
) -> Result<(), kube::Error> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    match existing {
        None => api
            .create(&PostParams::default(), &secret)
            .await
            .map(|_| ()),
        // A Secret's type cannot change in place: a new format replaces the Secret.
        Some(old) if old.type_ != secret.type_ => {
            api.delete(&name, &Default::default()).await?;
            api.create(&PostParams::default(), &secret)
                .await
                .map(|_| ())
        }
        Some(old) => {
            secret.metadata.resource_version = old.metadata.resource_version.clone();
            api.replace(&name, &PostParams::default(), &secret)
                .await
                .map(|_| ())
        }
    }
}

/// Revokes a GitHub installation token; a failure is an Event, never a block.
async fn revoke(ctx: &Context, token: &VcsAuthToken, api: &str, old: &str, why: &str) {
    let (type_, reason, note) = match ctx.github.revoke(api, old).await {
        Ok(()) => (
            kube::runtime::events::EventType::Normal,
            "Revoked",
            format!("revoked the {why} installation token"),
        ),
        Err(e) => (
            kube::runtime::events::EventType::Warning,
            "RevokeFailed",
            format!("could not revoke the {why} installation token: {e}"),
        ),
    };
    let event = kube::runtime::events::Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Revoke".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &token.object_ref(&())).await {
        warn!(error = %e, "could not publish an event");
    }
}

/// What to report in a token's status.
pub(super) enum Outcome {
    /// A usable credential is in the Secret.
    Valid(String),
    /// The request is refused before any provider call; the user must change something.
    Refused(ConfigError),
}

pub(super) async fn report(
    ctx: &Context,
    token: &VcsAuthToken,
    mut status: VcsAuthTokenStatus,
    outcome: Outcome,
    renew_at: Option<Timestamp>,
) -> Result<Action, Error> {
    let generation = token.meta().generation;
    let now = ctx.now();
    status.observed_generation = generation;
    let (desired, stalled) = match outcome {
        Outcome::Valid(message) => (
            Desired {
                type_: types::READY,
                status: ConditionStatus::True,
                reason: "TokenValid",
                message,
            },
            None,
        ),
        Outcome::Refused(e) => (
            Desired {
                type_: types::READY,
                status: ConditionStatus::False,
                reason: e.reason,
                message: e.message.clone(),
            },
            Some(e),
        ),
    };
    let transition = conditions::set(&mut status.conditions, desired, generation, &now);
    let problem = stalled.as_ref().map(|e| (e.reason, e.message.as_str()));
    conditions::set_stalled(&mut status.conditions, problem, generation, &now);
    conditions::remove(&mut status.conditions, types::RECONCILING);
    write_status(ctx, token, &status).await?;
    if transition {
        publish_ready(ctx, token, &status, "Mint").await;
    }
    ctx.succeeded(&key(token));
    Ok(match renew_at {
        Some(at) => Action::requeue(until(at)),
        None => Action::requeue(Duration::from_secs(600)),
    })
}

fn until(at: Timestamp) -> Duration {
    let wait = at.duration_since(Timestamp::now());
    Duration::try_from(wait.max(SignedDuration::ZERO))
        .unwrap_or_default()
        .max(MIN_REQUEUE)
}

/// Why a mint failed, whatever the provider: the condition reason, a message that tells the
/// user what to fix (never a secret), when the provider asked to be called again, and whether
/// only a change by the user can fix it (then the token is also `Stalled`).
pub(super) struct Failure {
    pub(super) reason: &'static str,
    pub(super) message: String,
    pub(super) retry_after: Option<Duration>,
    pub(super) permanent: bool,
}

impl From<MintError> for Failure {
    fn from(error: MintError) -> Self {
        let (reason, message, retry_after, permanent) = match &error {
            MintError::Config(e) => (e.reason, e.message.clone(), None, true),
            MintError::Github(e) => (e.reason(), e.to_string(), e.retry_after(), false),
            MintError::Kube(e) => ("KubernetesError", e.clone(), None, false),
        };
        Self {
            reason,
            message,
            retry_after,
            permanent,
        }
    }
}

/// A mint that failed: the still-valid credential stays and Ready stays True until it lapses;
/// retries back off (5 s to 5 min, honouring the provider's Retry-After / rate-limit reset).
pub(super) async fn failed(
    ctx: &Context,
    token: &VcsAuthToken,
    mut status: VcsAuthTokenStatus,
    error: impl Into<Failure>,
    current: Option<&Current>,
) -> Result<Action, Error> {
    let now = Timestamp::now();
    let Failure {
        reason,
        message,
        retry_after,
        permanent,
    } = error.into();
    warn!(%reason, %message, "minting failed");
    let delay = ctx
        .backoff(&key(token))
        .max(retry_after.unwrap_or_default());
    ctx.hold(&key(token), delay);
    let generation = token.meta().generation;
    let t = ctx.now();
    status.observed_generation = generation;
    let ready = match current.and_then(|c| c.valid_until(now)) {
        Some(until) => Desired {
            type_: types::READY,
            status: ConditionStatus::True,
            reason: "RenewalFailing",
            message: format!(
                "renewal failed ({reason}): {message}; the current credential stays valid until {until}"
            ),
        },
        None if current.is_some_and(|c| c.has_credential) => Desired {
            type_: types::READY,
            status: ConditionStatus::False,
            reason: "Expired",
            message: format!("the credential expired and renewal failed ({reason}): {message}"),
        },
        None => Desired {
            type_: types::READY,
            status: ConditionStatus::False,
            reason,
            message: message.clone(),
        },
    };
    let transition = conditions::set(&mut status.conditions, ready, generation, &t);
    let problem = permanent.then_some((reason, message.as_str()));
    conditions::set_stalled(&mut status.conditions, problem, generation, &t);
    write_status(ctx, token, &status).await?;
    if transition {
        publish_ready(ctx, token, &status, "Mint").await;
    }
    Ok(Action::requeue(delay))
}

/// On deletion: revokes the token's current GitHub credential (failures become Events).
pub async fn cleanup(token: &VcsAuthToken, ctx: &Context) -> Result<(), Error> {
    let namespace = token.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = output_name(token);
    let Some(secret) = secrets
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube("read Secret", &name, e))?
    else {
        return Ok(());
    };
    if !matches!(output::ownership(Some(&secret), token), Ownership::Ours) {
        return Ok(());
    }
    let current = current_credential(&secret, format_of(token, SecretFormat::BasicAuth));
    let api = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GITHUB_API_ANNOTATION).cloned());
    if let (Some(old), Some(api)) = (current.token, api) {
        revoke(ctx, token, &api, &old, "deleted token's").await;
    }
    Ok(())
}

/// Where a GitHub token was minted, so it can be revoked without its connection.
pub const GITHUB_API_ANNOTATION: &str = "patchbay.dev/github-api";
