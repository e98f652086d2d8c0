//! The token pipeline, the same for every connection kind: plan the request, read the
//! provider's inputs, decide (renewal), hold back after failures, mint, render, write the
//! Secret, revoke what it superseded, report. And revocation when the token goes away.
//!
//! ```text
//!  plan ─▶ owned Secret? ─▶ inputs (Secrets, hashes) ─▶ decide ─┬─ Keep ─▶ report
//!                                                               └─ Mint ─▶ held? ─▶ mint ─▶ write ─▶ revoke old ─▶ report
//! ```
//!
//! A token whose Secret the Secret watch reports exactly as the last mint wrote it (the
//! version the status records, the hashes its annotations record) is decided first without
//! reading the Secret: renewal then rests on the status's times, and a credential kept costs
//! no read; anything else goes the whole way above.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tracing::info;

use super::context::{Context, Slot};
use super::error::Error;
use super::output_secret::{self, Current, format_of, fresh_status, output_name};
use super::own_writes;
use super::report::{Outcome, failed, keep_recorded, report};
use super::secret_names::OutputState;
use super::secrets;
use super::status::token_key;
use super::waiting::key_of;
use super::{revocation, withdrawal};
use crate::api::token::{ConnectionRef, Issuer, SecretFormat};
use crate::api::{Connection, VcsAuthToken, VcsAuthTokenStatus};
use crate::output::{self, SecretInputs, annotations};
use crate::providers::{
    self, Env, Lifetime, Minted, Plan, Provider, ProviderError, Request, SecretValues, SharedGrant,
    oauth,
};
use crate::renewal::{self, Decision, Observed, SecretFacts};
use crate::telemetry::Call;

/// The longest a provider may take to mint, all its calls together.
pub const MINT_DEADLINE: Duration = Duration::from_secs(60);
/// The shortest time between two mints of one token, whatever asks for the second.
const MINT_FLOOR: SignedDuration = SignedDuration::from_secs(10);
const MINT_FLOOR_STD: Duration = Duration::from_secs(10);
/// What a token's Ready message says of a long-lived projection.
const LONG_LIVED: &str =
    "it does not expire; it is re-projected when the connection's Secret changes";
/// When a token whose grant another mint is using is looked at again.
const BUSY_RETRY: Duration = Duration::from_secs(2);
/// When a token waiting for a call of its connection is looked at again if no call's end woke
/// it first ([`super::waiting`]).
const SLOT_FALLBACK: Duration = Duration::from_secs(5);
/// The longest a look at a token waits for the Secret watch's list (after a start or a relist)
/// before it reads the token's Secret instead.
const LIST_WAIT: Duration = Duration::from_secs(5);

/// One token's way through the pipeline: what it asks for and where it goes.
struct Job<'a> {
    ctx: &'a Context,
    token: &'a VcsAuthToken,
    provider: &'static dyn Provider,
    at: &'a ConnectionRef,
    format: SecretFormat,
    secret_name: String,
    request_hash: String,
    connection_hash: String,
    /// What the connection hash covers besides the grant (see [`input_parts`]).
    input_parts: Vec<String>,
    /// Why the credential is renewed late ([`Plan::late`]).
    late: Option<&'static str>,
}

/// One mint's request, plan, the lock of its shared grant (held through the write-back), and
/// why it mints.
struct Minting<'a, 'r> {
    request: &'a Request<'r>,
    plan: &'a Plan,
    guard: Option<tokio::sync::OwnedMutexGuard<super::context::PendingWrites>>,
    why: &'a str,
}

/// The output Secret as found: its API, the object, and the credential in it; and the
/// connection's call slot, when it was taken before the Secret was read.
struct Found<'a> {
    api: Api<Secret>,
    existing: Option<Secret>,
    current: Option<Current>,
    slot: Option<Slot<'a>>,
}

/// Fills a token's Secret from the connection it resolved to, whatever its kind.
pub async fn run(
    token: &VcsAuthToken,
    conn: Arc<Connection>,
    at: ConnectionRef,
    status: VcsAuthTokenStatus,
    ctx: &Context,
) -> Result<Action, Error> {
    // A refusal only the user can lift means the right is gone: what was minted is withdrawn.
    let refuse = |status, e: ProviderError| async move {
        match e.permanent {
            true => withdrawal::withdraw(ctx, token, status, e).await,
            false => report(ctx, token, status, Outcome::Refused(e), None).await,
        }
    };
    let provider = match providers::for_spec(&conn.spec) {
        Ok(p) => p,
        Err(e) => return refuse(status, e).await,
    };
    let bundle = match secrets::ca_bundle(ctx, &conn).await {
        Ok(bundle) => bundle,
        Err(e) => return refuse(status, e).await,
    };
    ctx.remember_bundle(token_key(token), bundle.as_ref());
    let snapshot = ctx.snapshot();
    let env = Env {
        ca_bundle: bundle.as_ref(),
        ..snapshot.env()
    };
    let request = Request {
        token,
        connection: &conn,
        env: &env,
    };
    let plan = match provider.plan(&request) {
        Ok(plan) => plan,
        Err(e) => return refuse(status, e).await,
    };
    // A token that never minted is about to: it waits for its connection's share of calls
    // before it reads anything, so that waiting (thousands of new tokens queue on one
    // connection) costs no read.
    let never_minted = status.issued_at.is_none() && status.token_id.is_none();
    let slot = match never_minted {
        true => match ctx.provider_slot(&format!("{}/{}", at.namespace, at.name), key_of(token)) {
            Some(slot) => Some(slot),
            None => return Ok(Action::requeue(SLOT_FALLBACK)),
        },
        false => None,
    };
    let format = format_of(token, plan.default_format);
    let secret_name = output_name(token);
    let mut status = status;
    withdrawal::retire_renamed(ctx, token, &mut status, &secret_name).await?;
    let inputs = Inputs {
        provider,
        at: &at,
        conn: &conn,
        env: &env,
        format,
    };
    // A token whose status vouches for its Secret's version is decided first without reading
    // the Secret; what that look prepared serves the whole way too, unless the plan changes.
    let mut prepared = None;
    if vouched_for(&status, &secret_name, Timestamp::now()) {
        let made = prepare(ctx, token, &inputs, &plan, secret_name.clone()).await;
        if let Ok((job, _)) = &made
            && let Some((renew_at, expires_at)) = job.unchanged(&plan, &status).await
        {
            return job.keep(status, plan.lifetime, renew_at, expires_at).await;
        }
        prepared = Some(made);
    }
    let (api, existing) = match output_secret::owned(ctx, token, &secret_name, never_minted).await?
    {
        Ok(found) => found,
        // Someone else's Secret of that name: nothing of patchbay's to withdraw there.
        Err(e) => return report(ctx, token, status, Outcome::Refused(e), None).await,
    };
    let current = existing.as_ref().map(|s| Current::of(s, format));
    let mut status = match fresh_status(ctx, token, status, current.as_ref()).await? {
        Some(status) => status,
        // The watch is bringing the record of the last mint: go on once it is here.
        None => return Ok(Action::requeue(output_secret::CATCH_UP_RETRY)),
    };
    // The cache had not caught up with the last mint, or the status adopted the Secret's
    // credential: plan again with what the status really records (what was minted, and where,
    // decides what a plan may do, e.g. where a user's token may go).
    let caught_up;
    let replanned = token.status.as_ref() != Some(&status);
    let (request, plan) = if replanned {
        caught_up = VcsAuthToken {
            status: Some(status.clone()),
            ..token.clone()
        };
        let request = Request {
            token: &caught_up,
            ..request
        };
        match provider.plan(&request) {
            Ok(plan) => (request, plan),
            Err(e) => return refuse(status, e).await,
        }
    } else {
        (request, plan)
    };
    status.connection_ref = Some(at.clone());
    status.secret_name = Some(secret_name.clone());
    let made = match prepared.filter(|_| !replanned) {
        Some(made) => made,
        None => prepare(ctx, token, &inputs, &plan, secret_name).await,
    };
    let (job, values) = match made {
        Ok(made) => made,
        Err(e) => return failed(ctx, token, status, e, current.as_ref()).await,
    };
    // A superseded credential whose grace has passed is revoked now.
    revocation::revoke_superseded(ctx, token, &mut status, current.as_ref(), false).await;
    let found = Found {
        api,
        existing,
        current,
        slot,
    };
    job.decide(&request, &plan, values, found, status).await
}

/// What a token's job is made from, besides its plan: the provider, the connection it resolved
/// to, the environment its plan was made in, and the output format.
struct Inputs<'a> {
    provider: &'static dyn Provider,
    at: &'a ConnectionRef,
    conn: &'a Connection,
    env: &'a Env<'a>,
    format: SecretFormat,
}

/// Whether `status` vouches for the token's Secret `secret_name` as the last mint wrote it (or
/// an adoption found it), with no superseded credential due for revocation at `now`: only then
/// may a look decide without reading the Secret ([`Job::unchanged`]).
fn vouched_for(status: &VcsAuthTokenStatus, secret_name: &str, now: Timestamp) -> bool {
    let grace_due = (status.superseded.as_ref()).is_some_and(|s| s.revoke_at.0 <= now);
    status.secret_resource_version.is_some()
        && status.secret_name.as_deref() == Some(secret_name)
        && !grace_due
}

/// Reads the connection's inputs for `plan` and makes the token's job: where its Secret goes
/// and the hashes that say whether the credential in it still answers the request.
async fn prepare<'a>(
    ctx: &'a Context,
    token: &'a VcsAuthToken,
    inputs: &Inputs<'a>,
    plan: &Plan,
    secret_name: String,
) -> Result<(Job<'a>, SecretValues), ProviderError> {
    let Inputs {
        provider,
        at,
        conn,
        env,
        format,
    } = *inputs;
    let here = token.namespace().unwrap_or_default();
    let mut values = SecretValues::seen_from(at.namespace.clone(), here);
    let input_parts =
        input_parts(ctx, provider, conn, env, plan.grant.as_ref(), &mut values).await?;
    let job = Job {
        ctx,
        token,
        provider,
        at,
        format,
        request_hash: request_hash(at, format, &secret_name, plan),
        secret_name,
        connection_hash: connection_hash(&input_parts, &values, plan.grant.as_ref()),
        input_parts,
        late: plan.late,
    };
    Ok((job, values))
}

/// A write-back that failed: the provider's answer is kept in memory and stored before the
/// grant is used again; nothing new is published until it is.
fn unsaved_grant(e: ProviderError) -> ProviderError {
    let message = format!(
        "the provider rotated the grant but storing it failed ({}); the new grant is kept in \
         memory and stored before the grant is used again",
        e.message
    );
    ProviderError { message, ..e }
}

/// The hash of everything that, when it changes, needs a new credential.
fn request_hash(at: &ConnectionRef, format: SecretFormat, secret: &str, plan: &Plan) -> String {
    let mut parts = vec![
        at.namespace.clone(),
        at.name.clone(),
        format!("{format:?}"),
        secret.to_string(),
    ];
    parts.extend(plan.hash_parts.iter().cloned());
    renewal::request_hash(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Reads the connection's inputs and the token's shared grant into `values`, and returns what
/// the connection hash covers besides the grant: the identities the inputs depend on and a
/// digest of each input Secret.
async fn input_parts(
    ctx: &Context,
    provider: &dyn Provider,
    conn: &Connection,
    env: &Env<'_>,
    grant: Option<&SharedGrant>,
    values: &mut SecretValues,
) -> Result<Vec<String>, ProviderError> {
    let inputs = provider.inputs(conn, env)?;
    let versions = secrets::read_kept(ctx, &inputs.reads, values).await?;
    if let Some(grant) = grant {
        secrets::read_kept(ctx, std::slice::from_ref(&grant.secret), values).await?;
    }
    Ok(inputs.depends_on.into_iter().chain(versions).collect())
}

/// The connection hash: the input parts and, for a token that follows its grant, the grant as
/// `values` hold it.
fn connection_hash(parts: &[String], values: &SecretValues, grant: Option<&SharedGrant>) -> String {
    let followed = grant
        .filter(|g| g.follows)
        .map(|g| grant_version(values, g));
    let all: Vec<&str> = (parts.iter().chain(&followed))
        .map(String::as_str)
        .collect();
    renewal::request_hash(&all)
}

/// What of a shared grant the tokens following it renew on: its refresh token and the access
/// token cached beside it, not its bookkeeping (the in-flight marker, the cache's times).
fn grant_version(values: &SecretValues, grant: &SharedGrant) -> String {
    let key = |k: String| crate::api::SecretKeyRef {
        name: grant.secret.name.clone(),
        key: k,
    };
    let value = |k: String| {
        (values.get_in("grant", &grant.secret.namespace, &key(k)))
            .map(|v| renewal::request_hash(&[&String::from_utf8_lossy(v)]))
            .unwrap_or_default()
    };
    let cached = oauth::cached_access_token_key(&grant.key);
    renewal::request_hash(&[&value(grant.key.clone()), &value(cached)])
}

impl Job<'_> {
    /// What renewal observes: the Secret's facts (a static projection never falls due), the
    /// hashes, and the token's renewBefore, renewal request, jitter and last mint.
    fn observe<'b>(
        &'b self,
        status: &VcsAuthTokenStatus,
        facts: Option<SecretFacts<'b>>,
        lifetime: Lifetime,
        now: Timestamp,
    ) -> Observed<'b> {
        let mut facts = facts;
        if let (Lifetime::LongLived(_), Some(f)) = (lifetime, facts.as_mut()) {
            let century = SignedDuration::from_hours(24 * 365 * 100);
            f.expires_at = now.checked_add(century).ok();
            f.issued_at = f.issued_at.or(Some(now));
        }
        let spec = &self.token.spec;
        Observed {
            now,
            secret: facts,
            request_hash: &self.request_hash,
            connection_hash: &self.connection_hash,
            renew_requested_at: self.renew_requested_at(),
            last_mint: status.issued_at.as_ref().map(|t| t.0),
            renew_before: (spec.renew_before.as_deref())
                .and_then(|d| renewal::parse_go_duration(d).ok())
                .or(self.late.map(|_| renewal::LATE_RENEW_BEFORE)),
            jitter: renewal::jitter_for(&token_key(self.token)),
        }
    }

    /// How long a re-mint must wait: every mint after a token's first obeys the per-token floor
    /// and, unless it is a scheduled renewal, its connection's budget (see [`Context::spend`]).
    /// A tenant asking again and again (the renew annotation, deleting the Secret, editing the
    /// token) cannot spend the provider's rate limit that other tenants share.
    fn rationed(
        &self,
        status: &VcsAuthTokenStatus,
        reason: renewal::Reason,
        connection: &str,
        now: Timestamp,
    ) -> Option<Duration> {
        let last = status.issued_at.as_ref()?.0;
        let next = last.checked_add(MINT_FLOOR).ok()?;
        if now < next {
            let wait = Duration::try_from(next.duration_since(now)).unwrap_or(MINT_FLOOR_STD);
            return Some(wait.max(Duration::from_millis(100)));
        }
        let scheduled = matches!(
            reason,
            renewal::Reason::RenewalDue | renewal::Reason::Expired
        );
        if scheduled {
            return None;
        }
        self.ctx.spend(connection)
    }

    /// The renewal request the token carries now.
    fn renew_requested_at(&self) -> Option<&str> {
        (self.token.annotations())
            .get(annotations::RENEW_REQUESTED_AT)
            .map(String::as_str)
    }

    /// When the Secret watch reports the token's Secret exactly as the mint the status records
    /// wrote it (that version, this request's hashes and renewal request) and renewal keeps
    /// the credential: when to renew it and when it expires, decided on the status's times
    /// with no read of the Secret. `None`: the way through the Secret decides. For a status
    /// that [`vouched_for`] the Secret.
    async fn unchanged(
        &self,
        plan: &Plan,
        status: &VcsAuthTokenStatus,
    ) -> Option<(Timestamp, Timestamp)> {
        let (name, uid) = (self.token.name_any(), self.token.uid());
        let expected = OutputState {
            resource_version: status.secret_resource_version.as_deref()?,
            token: Some(&name),
            owner: uid.as_deref(),
            request_hash: Some(&self.request_hash),
            connection_hash: Some(&self.connection_hash),
            // A token that asks for no renewal does not care which request the Secret answered.
            renew_requested_at: renewal::renewal_request(self.renew_requested_at()),
        };
        let names = &self.ctx.secret_names;
        let namespace = self.token.namespace().unwrap_or_default();
        let unchanged = || names.unchanged(&namespace, &self.secret_name, &expected);
        if !unchanged() {
            // Not reported (yet): after a start or a relist, wait for the watch's list once.
            names.settled(LIST_WAIT).await;
            if !unchanged() {
                return None;
            }
        }
        let now = Timestamp::now();
        // The Secret is as that mint wrote it: its credential, and the times the status
        // recorded with it.
        let facts = SecretFacts {
            has_credential: true,
            request_hash: expected.request_hash,
            connection_hash: expected.connection_hash,
            renew_requested_at: expected.renew_requested_at,
            issued_at: status.issued_at.as_ref().map(|t| t.0),
            expires_at: status.expires_at.as_ref().map(|t| t.0),
        };
        match renewal::decide(&self.observe(status, Some(facts), plan.lifetime, now)) {
            Decision::Keep {
                renew_at,
                expires_at,
            } => Some((renew_at, expires_at)),
            Decision::Mint { .. } => None,
        }
    }

    fn via(&self) -> String {
        format!("via {}/{}", self.at.namespace, self.at.name)
    }

    /// Keeps the credential in place, or mints a new one.
    async fn decide(
        &self,
        request: &Request<'_>,
        plan: &Plan,
        values: SecretValues,
        mut found: Found<'_>,
        status: VcsAuthTokenStatus,
    ) -> Result<Action, Error> {
        let now = Timestamp::now();
        let facts = found.current.as_ref().map(Current::facts);
        let observed = self.observe(&status, facts, plan.lifetime, now);
        let (reason, why) = match renewal::decide(&observed) {
            Decision::Keep {
                renew_at,
                expires_at,
            } => return self.keep(status, plan.lifetime, renew_at, expires_at).await,
            Decision::Mint { reason, message } => (reason, message),
        };
        if let Some(e) = self.ctx.dead_end(&token_key(self.token), &self.hashes()) {
            // The grant is gone and nothing it depends on changed: no provider call can help.
            return failed(self.ctx, self.token, status, e, found.current.as_ref()).await;
        }
        if let Some(wait) = self.ctx.held_for(&token_key(self.token)) {
            // A recent failure holds provider calls back; whatever woke us must not bypass that.
            return Ok(Action::requeue(wait));
        }
        let connection = format!("{}/{}", self.at.namespace, self.at.name);
        if let Some(wait) = self.rationed(&status, reason, &connection, now) {
            return Ok(Action::requeue(wait));
        }
        // A grant another mint is using is waited for outside the connection's shared slots,
        // so that tokens queueing on one tenant's grant never hold the slots other tenants need.
        let guard = match &plan.grant {
            Some(grant) => match self.ctx.try_grant(&grant.lock()) {
                Some(guard) => Some(guard),
                None => return Ok(Action::requeue(BUSY_RETRY)),
            },
            None => None,
        };
        let slot = (found.slot.take())
            .or_else(|| (self.ctx).provider_slot(&connection, key_of(self.token)));
        let Some(_slot) = slot else {
            // The connection has its share of calls running: wait outside the shared slots,
            // to be woken when one of them ends.
            return Ok(Action::requeue(SLOT_FALLBACK));
        };
        let kind = self.provider.kind().field_name();
        info!(kind, reason = reason.as_str(), "minting a credential");
        let why = format!("{reason}: {why}");
        let job = Minting {
            request,
            plan,
            guard,
            why: &why,
        };
        self.mint(job, values, found, status).await
    }

    /// Reports the credential in place as valid.
    async fn keep(
        &self,
        mut status: VcsAuthTokenStatus,
        lifetime: Lifetime,
        renew_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Action, Error> {
        let (ctx, token) = (self.ctx, self.token);
        if let Lifetime::LongLived(what) = lifetime {
            (status.expires_at, status.renew_at) = (None, None);
            let message = format!("long-lived {what} projected ({}); {LONG_LIVED}", self.via());
            return report(ctx, token, status, Outcome::Valid(message), None).await;
        }
        if let Some((renew_at, message)) = keep_recorded(&status, expires_at) {
            return report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await;
        }
        status.renew_at = Some(Time(renew_at));
        status.expires_at = Some(Time(expires_at));
        let issued = status.issued_at.as_ref().map_or(Timestamp::now(), |t| t.0);
        let mut message = format!("credential valid until {expires_at}; renewing at {renew_at}");
        if let Some(problem) = renewal::lifetime_problem(issued, expires_at) {
            message = format!("{message}; {problem}");
        }
        report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await
    }

    /// The hashes a dead end is remembered by: the request and the connection's inputs.
    fn hashes(&self) -> String {
        format!("{} {}", self.request_hash, self.connection_hash)
    }

    /// Calls the provider and puts what it minted in place. A mint from a shared grant holds
    /// the grant's lock throughout, reads the grant afresh under it, and stores what the
    /// provider rotated before anything is published.
    async fn mint(
        &self,
        job: Minting<'_, '_>,
        mut values: SecretValues,
        found: Found<'_>,
        status: VcsAuthTokenStatus,
    ) -> Result<Action, Error> {
        let Minting {
            request,
            plan,
            mut guard,
            why,
        } = job;
        let (ctx, token) = (self.ctx, self.token);
        let current = found.current.as_ref();
        // A provider writes back only into Secrets its plan named.
        let named = |secret: &Secret| {
            let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
            let named = (plan
                .reads
                .iter()
                .chain(plan.grant.as_ref().map(|g| &g.secret)))
            .any(|r| r.namespace == ns && r.name == name);
            named.then_some(()).ok_or_else(|| {
                format!("Secret {ns}/{name} is not one the provider was given to read")
            })
        };
        if let Some(pending) = guard.as_deref_mut().filter(|p| !p.is_empty()) {
            // The last use of this grant rotated it and could not store the result: that is
            // the only live copy, so it is stored before the grant is used again.
            if let Err(e) = secrets::write(ctx, pending, named).await {
                return failed(ctx, token, status, unsaved_grant(e), current).await;
            }
            pending.clear();
        }
        let mut reads = plan.reads.clone();
        reads.extend(plan.grant.as_ref().map(|g| g.secret.clone()));
        let dead_end = |e: &ProviderError| {
            if e.reason == oauth::REAUTHORIZATION_REQUIRED {
                ctx.remember_dead_end(&token_key(token), self.hashes(), e);
            }
        };
        // The grant is read afresh under its lock; what else the plan reads may come from
        // memory (the watch says when it changed).
        let others: Vec<_> = (plan.reads.iter())
            .filter(|r| plan.grant.as_ref().is_none_or(|g| &g.secret != *r))
            .cloned()
            .collect();
        let read = match secrets::read_kept(ctx, &others, &mut values).await {
            Ok(_) => match &plan.grant {
                Some(g) => secrets::read(ctx, std::slice::from_ref(&g.secret), &mut values).await,
                None => Ok(Vec::new()),
            },
            Err(e) => Err(e),
        };
        // What must be durable before the call (an in-flight marker), or why not to call.
        let intent = read
            .map_err(ProviderError::from)
            .and_then(|_| self.provider.before_mint(request, &values));
        let stored = match intent {
            Ok(writes) if writes.is_empty() => Ok(()),
            Ok(writes) => match secrets::write(ctx, &writes, named).await {
                Ok(dropped) if dropped.is_empty() => {
                    writes.iter().for_each(|w| values.apply(w));
                    Ok(())
                }
                Ok(_) => Err(ProviderError::transient(
                    oauth::GRANT_CHANGED,
                    "the grant Secret changed while it was being used; trying again",
                )),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        // A credential counts as issued when it was asked for: a provider's expiry comes from
        // its own clock after it got the request, so the lifetime recorded is never shorter
        // than the provider's, and renewal is never late because the call was slow.
        let issued_at = Timestamp::now();
        let minted = match stored {
            Ok(()) => {
                let call = self.provider.mint(request, &values, &ctx.services);
                let what = (self.provider.kind(), Call::Mint);
                ctx.call(what, MINT_DEADLINE, "minting", call).await
            }
            Err(e) => Err(e),
        };
        let minted = match minted {
            Ok(minted) => minted,
            Err(e) => {
                dead_end(&e);
                return failed(ctx, token, status, e, current).await;
            }
        };
        match secrets::write(ctx, &minted.write_back, named).await {
            Ok(dropped) if !dropped.is_empty() => {
                info!(secrets = ?dropped, "a newer grant was stored meanwhile; it is kept");
                // What the Secret holds now is that newer grant: read it for the hash.
                if let Err(e) = secrets::read(ctx, &reads, &mut values).await {
                    return failed(ctx, token, status, e.into(), current).await;
                }
            }
            Ok(_) => minted.write_back.iter().for_each(|w| values.apply(w)),
            Err(e) => {
                if let Some(pending) = guard.as_deref_mut() {
                    pending.extend(minted.write_back.iter().cloned());
                }
                return failed(ctx, token, status, unsaved_grant(e), current).await;
            }
        }
        if let Some(e) = minted.failed {
            dead_end(&e);
            return failed(ctx, token, status, e, current).await;
        }
        // The grant as it is now (read under the lock, with this mint's writes) is part of
        // the connection hash the Secret records.
        let connection_hash = connection_hash(&self.input_parts, &values, plan.grant.as_ref());
        drop(guard);
        let rendered = match output::render(&minted.credential, self.format) {
            Ok(r) => r,
            Err(e) => {
                let e = ProviderError::config(e.reason(), e.to_string());
                return report(ctx, token, status, Outcome::Refused(e), None).await;
            }
        };
        let now = Timestamp::now();
        let token_id = minted.credential.fingerprint();
        let mut status = status;
        let mut secret = output::build_secret(SecretInputs {
            token,
            rendered,
            connection: (&self.at.namespace, &self.at.name),
            request_hash: &self.request_hash,
            connection_hash: &connection_hash,
            issued_at,
            expires_at: minted.credential.expires_at(),
            renew_requested_at: (token.annotations())
                .get(annotations::RENEW_REQUESTED_AT)
                .map(String::as_str),
            token_id: &token_id,
        });
        // One credential waits out its grace at a time: an older one goes now.
        revocation::revoke_superseded(ctx, token, &mut status, current, true).await;
        let replaced = current.filter(|c| c.token_id() != Some(token_id.as_str()));
        let grace = ctx.options.superseded_grace;
        let kept = replaced.is_some_and(|old| {
            revocation::keep_superseded(grace, &mut status, old, &mut secret, now)
        });
        let old_issuer = status.issuer.clone();
        let fresh = secret.data.clone().unwrap_or_default();
        let namespace = token.namespace().unwrap_or_default();
        let complete = output::has_credential(&secret, self.format);
        ctx.own_writes.writing(&namespace, &self.secret_name);
        let written =
            output_secret::write(&found.api, token, found.existing.as_ref(), secret).await;
        // This reconcile has done what the Secret's new version calls for; an edit by someone
        // else that the watch brought meanwhile wakes the token again.
        let outcome = match &written {
            Ok(Some(version)) => own_writes::Outcome::Stored(version),
            _ => own_writes::Outcome::Failed,
        };
        if (ctx.own_writes).wrote(&namespace, &self.secret_name, outcome) {
            ctx.waiting.wake(key_of(token));
        }
        let version = match written {
            Ok(version) => version,
            Err(e) => {
                // Nothing holds the new credential: revoke it rather than leave it live and
                // unknown.
                let data = fresh.into_iter().map(|(k, v)| (k, v.0)).collect();
                let endpoint = minted.endpoint.as_deref();
                revocation::unsaved(ctx, token, self.provider, &data, endpoint).await;
                return Err(Error::kube("write Secret", &self.secret_name, e));
            }
        };
        // The version the status vouches for: while the watch reports it, a look reads nothing.
        status.secret_resource_version = version.filter(|_| complete);
        // The new credential is in place: the one it replaces can go.
        if let Some(old) = replaced.filter(|_| !kept) {
            revocation::superseded(ctx, token, old_issuer.as_ref(), old).await;
        }
        self.minted(status, minted, plan.lifetime, token_id, issued_at, why)
            .await
    }

    /// Records a new credential in the status.
    async fn minted(
        &self,
        mut status: VcsAuthTokenStatus,
        minted: Minted,
        lifetime: Lifetime,
        token_id: String,
        issued_at: Timestamp,
        why: &str,
    ) -> Result<Action, Error> {
        let (ctx, token) = (self.ctx, self.token);
        status.token_id = Some(token_id);
        status.issuer = Some(Issuer {
            kind: self.provider.kind().field_name().to_string(),
            endpoint: minted.endpoint.clone(),
        });
        status.last_issuer = status.issuer.clone();
        status.issued_at = Some(Time(issued_at));
        status.revision += 1;
        let mut note = None;
        if let Some(granted) = minted.granted {
            status.permissions = granted.permissions.into();
            status.repositories = granted.repositories;
            status.personal_access_token_source = granted.pat_source;
            note = granted.note;
        }
        let minted_msg = format!("minted ({why})");
        let Some(expires_at) = minted.credential.expires_at() else {
            (status.expires_at, status.renew_at) = (None, None);
            let (what, lasting) = match lifetime {
                Lifetime::LongLived(what) => (what, LONG_LIVED),
                Lifetime::Expiring => ("credential", "the provider gave no expiry"),
            };
            let via = self.via();
            let message = format!("{minted_msg}: long-lived {what} ({via}); {lasting}");
            return report(ctx, token, status, Outcome::Valid(message), None).await;
        };
        let observed = self.observe(&status, None, Lifetime::Expiring, issued_at);
        let (before, jitter) = (observed.renew_before, observed.jitter);
        let renew_at = renewal::renew_at(issued_at, expires_at, before, jitter, Some(issued_at));
        status.expires_at = Some(Time(expires_at));
        status.renew_at = Some(Time(renew_at));
        let mut message = format!(
            "{minted_msg}; valid until {expires_at}, renewing at {renew_at} ({})",
            self.via()
        );
        if let Some(problem) = renewal::lifetime_problem(issued_at, expires_at) {
            message = format!("{message}; {problem}");
        }
        if let Some(note) = note {
            message = format!("{message}; {note}");
        }
        if let Some(late) = self.late.filter(|_| self.token.spec.renew_before.is_none()) {
            let before = renewal::LATE_RENEW_BEFORE.as_secs() / 60;
            message = format!("{message}; renewed late, {before} min before expiry: {late}");
        }
        report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(parts: &[&str]) -> Plan {
        Plan {
            hash_parts: parts.iter().map(|p| p.to_string()).collect(),
            default_format: SecretFormat::BasicAuth,
            lifetime: Lifetime::Expiring,
            reads: Vec::new(),
            grant: None,
            late: None,
        }
    }

    fn at(namespace: &str) -> ConnectionRef {
        ConnectionRef {
            namespace: namespace.into(),
            name: "conn".into(),
        }
    }

    #[test]
    fn the_request_hash_changes_with_the_connection_format_secret_name_and_plan() {
        let base = request_hash(&at("ci"), SecretFormat::BasicAuth, "out", &plan(&["a"]));
        assert_eq!(
            base,
            request_hash(&at("ci"), SecretFormat::BasicAuth, "out", &plan(&["a"])),
            "the same request hashes the same"
        );
        for other in [
            request_hash(&at("team"), SecretFormat::BasicAuth, "out", &plan(&["a"])),
            request_hash(&at("ci"), SecretFormat::Opaque, "out", &plan(&["a"])),
            request_hash(&at("ci"), SecretFormat::BasicAuth, "other", &plan(&["a"])),
            request_hash(&at("ci"), SecretFormat::BasicAuth, "out", &plan(&["b"])),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn only_a_status_recording_the_secret_s_version_and_name_with_no_revocation_due_skips_the_read()
    {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let recorded = VcsAuthTokenStatus {
            secret_name: Some("out".into()),
            secret_resource_version: Some("7".into()),
            ..VcsAuthTokenStatus::default()
        };
        assert!(vouched_for(&recorded, "out", now));
        assert!(!vouched_for(&recorded, "renamed", now), "a renamed Secret");
        let unrecorded = VcsAuthTokenStatus {
            secret_resource_version: None,
            ..recorded.clone()
        };
        assert!(
            !vouched_for(&unrecorded, "out", now),
            "minted before the version was kept"
        );
        let superseded = |revoke_at: Timestamp| VcsAuthTokenStatus {
            superseded: Some(Box::new(crate::api::token::Superseded {
                token_id: "sha256:old".into(),
                issuer: Issuer {
                    kind: "githubApp".into(),
                    endpoint: None,
                },
                revoke_at: Time(revoke_at),
            })),
            ..recorded.clone()
        };
        let later = now.checked_add(SignedDuration::from_secs(60)).unwrap();
        assert!(
            vouched_for(&superseded(later), "out", now),
            "grace still running"
        );
        assert!(
            !vouched_for(&superseded(now), "out", now),
            "a superseded credential due for revocation needs the Secret's copy of it"
        );
    }
}
