//! Filling a VcsAuthToken's Secret from an aws or ecr connection: STS session credentials
//! (GetSessionToken for access keys, AssumeRole for roles, chained through source connections
//! up the tree), projected static keys, or an ECR registry login. Renewal, Secret ownership,
//! backoff and status are the GitHub path's (see [`super::mint`]).

use std::sync::Arc;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::info;

use super::aws_chain::{self, Session, Signer};
use super::mint::{
    Failure, Outcome, current_credential, failed, format_of, fresh_status, keep_recorded, observe,
    output_name, owned_secret, report, time, write_secret,
};
use super::token::key;
use super::{Context, Error};
use crate::api::connection::{Ecr, EcrRepositoryType};
use crate::api::token::{AwsTokenRequest, ConnectionRef, SecretFormat};
use crate::api::{Connection, VcsAuthToken, VcsAuthTokenStatus};
use crate::output::{self, Credential, SecretInputs};
use crate::providers::ConfigError;
use crate::providers::sts::{self, StaticKeys};
use crate::renewal::{self, Decision};

/// GetSessionToken accepts 900 s to 36 h for IAM users.
const SESSION_TOKEN_BOUNDS: (i32, i32) = (900, 129_600);

/// What a token asks of its aws or ecr connection, every ceiling applied.
struct Plan {
    /// The token's own AssumeRole (spec.aws.roleArn), already checked against allowedRoleArns.
    role_arn: Option<String>,
    session: Session,
    /// An ECR login instead of STS credentials.
    ecr: Option<Ecr>,
    /// Static keys are projected as they are (no session credentials, no role).
    long_lived: bool,
    default_format: SecretFormat,
}

impl Plan {
    fn new(token: &VcsAuthToken, conn: &Connection) -> Result<Plan, ConfigError> {
        let namespace = token.namespace().unwrap_or_default();
        let name = token.name_any();
        let request = token.spec.aws.as_ref();
        let field = |f: fn(&AwsTokenRequest) -> Option<&String>| request.and_then(f).cloned();
        let role_arn = field(|r| r.role_arn.as_ref());
        if let Some(arn) = &role_arn {
            let allowed = (conn.spec.aws.as_ref())
                .and_then(|a| a.allowed_role_arns.as_deref())
                .unwrap_or_default();
            if !sts::role_allowed(arn, allowed) {
                return Err(ConfigError::new(
                    "RoleNotAllowed",
                    format!(
                        "spec.aws.roleArn: {arn} matches none of the connection's allowedRoleArns"
                    ),
                ));
            }
        }
        let user_tags = request
            .and_then(|r| r.session_tags.clone())
            .unwrap_or_default();
        let session = Session {
            name: field(|r| r.role_session_name.as_ref())
                .unwrap_or_else(|| sts::session_name(&namespace, &name)),
            tags: sts::session_tags(&namespace, &name, &user_tags)?,
            duration: request.and_then(|r| r.duration_seconds),
            policy: field(|r| r.policy.as_ref()),
            policy_arns: request
                .and_then(|r| r.policy_arns.clone())
                .unwrap_or_default(),
        };
        let keys = (conn.spec.aws.as_ref()).and_then(|a| a.credentials.access_keys.as_ref());
        let long_lived = role_arn.is_none() && keys.is_some_and(|k| !k.use_session_credentials);
        let default_format = match conn.spec.ecr {
            Some(_) => SecretFormat::DockerConfigJson,
            None => SecretFormat::AwsCredentials,
        };
        Ok(Plan {
            role_arn,
            session,
            ecr: conn.spec.ecr.clone(),
            long_lived,
            default_format,
        })
    }

    /// The parts of the request that, when they change, need a new credential.
    fn hash_parts(&self) -> Vec<String> {
        let s = &self.session;
        let mut parts = vec![
            self.role_arn.clone().unwrap_or_default(),
            s.name.clone(),
            format!("{:?}", s.duration),
            s.policy.clone().unwrap_or_default(),
            s.policy_arns.join(","),
        ];
        parts.extend(s.tags.iter().map(|(k, v)| format!("tag:{k}={v}")));
        parts
    }
}

/// An ECR docker login with `keys`: the account's private registry in the connection's
/// region, or ECR Public.
pub(super) async fn ecr_login(ecr: &Ecr, keys: &StaticKeys) -> Result<Credential, Failure> {
    let login = match ecr.repository_type {
        EcrRepositoryType::Private => {
            let region = ecr.region.clone().unwrap_or_default();
            let endpoint = (ecr.endpoint.clone()).unwrap_or_else(|| sts::ecr_endpoint(&region));
            sts::ecr_login(&sts::ecr_client(&region, &endpoint, keys), None).await
        }
        EcrRepositoryType::Public => {
            let endpoint = (ecr.endpoint.clone()).unwrap_or_else(sts::ecr_public_endpoint);
            let client = sts::ecr_public_client(sts::ECR_PUBLIC_REGION, &endpoint, keys);
            sts::ecr_public_login(&client).await
        }
    };
    Ok(login?)
}

/// Mints what `plan` asks for from the connection's chain.
async fn mint_credential(
    chain: &aws_chain::Chain,
    plan: &Plan,
    conn: &Connection,
) -> Result<Credential, Failure> {
    let session = &plan.session;
    if let Some(ecr) = &plan.ecr {
        let signer = chain.sign(&session.name, Some(session)).await?;
        return ecr_login(ecr, &signer.keys).await;
    }
    let aws = conn.spec.aws.as_ref();
    let max = aws.and_then(|a| a.max_session_duration);
    let top = (plan.role_arn.is_none()).then_some(session);
    let mut signer: Signer = chain.sign(&session.name, top).await?;
    if let Some(arn) = &plan.role_arn {
        signer = signer.assume(arn, None, session, max).await?;
    } else if chain.direct() && signer.keys.session_token.is_none() && !plan.long_lived {
        // An IAM user's own keys (access keys, or a default chain that found long-lived keys)
        // never leave the operator: the token gets session credentials made with them.
        let keys = aws.and_then(|a| a.credentials.access_keys.as_ref());
        let (lo, hi) = SESSION_TOKEN_BOUNDS;
        let duration = (session.duration.or(keys.and_then(|k| k.session_duration)))
            .unwrap_or(3600)
            .clamp(lo, hi);
        let client = sts::sts_client(&signer.region, &signer.sts, &signer.keys);
        return Ok(sts::get_session_token(&client, duration).await?);
    }
    Ok(Credential::Aws {
        access_key_id: signer.keys.access_key_id,
        secret_access_key: signer.keys.secret_access_key,
        session_token: signer.keys.session_token,
        region: signer.region,
        expires_at: signer.expires_at,
    })
}

/// Fills a token's Secret from an aws or ecr connection.
pub async fn mint(
    token: &VcsAuthToken,
    conn: Arc<Connection>,
    at: ConnectionRef,
    status: VcsAuthTokenStatus,
    ctx: &Context,
) -> Result<Action, Error> {
    let key = key(token);
    let now = Timestamp::now();
    let plan = match Plan::new(token, &conn) {
        Ok(plan) => plan,
        Err(e) => return report(ctx, token, status, Outcome::Refused(e), None).await,
    };
    let format = format_of(token, plan.default_format);
    let secret_name = output_name(token);
    let mut parts = vec![at.namespace.clone(), at.name.clone(), format!("{format:?}")];
    parts.push(secret_name.clone());
    parts.extend(plan.hash_parts());
    let request_hash = renewal::request_hash(&parts.iter().map(String::as_str).collect::<Vec<_>>());
    let (secrets, existing) = match owned_secret(ctx, token, &secret_name).await? {
        Ok(found) => found,
        Err(e) => return report(ctx, token, status, Outcome::Refused(e), None).await,
    };
    let current = existing.as_ref().map(|s| current_credential(s, format));
    let mut status = fresh_status(ctx, token, status, current.as_ref()).await?;
    let chain = match aws_chain::resolve(ctx, conn.clone()).await {
        Ok(chain) => chain,
        Err(e) => return failed(ctx, token, status, e, current.as_ref()).await,
    };
    let inputs: Vec<&str> = chain.inputs.iter().map(String::as_str).collect();
    let connection_hash = renewal::request_hash(&inputs);
    let mut facts = current.as_ref().map(|c| c.facts());
    if plan.long_lived
        && let Some(f) = facts.as_mut()
    {
        // Static keys never fall due: only a changed request or connection, or a user's
        // renewal request, projects them again.
        let century = SignedDuration::from_hours(24 * 365 * 100);
        f.expires_at = now.checked_add(century).ok();
        f.issued_at = f.issued_at.or(Some(now));
    }
    let hashes = (request_hash.as_str(), connection_hash.as_str());
    let observed = observe(token, &status, now, facts, hashes);
    let decision = renewal::decide(&observed);
    let via = format!("via {}/{}", at.namespace, at.name);
    status.connection_ref = Some(at.clone());
    status.secret_name = Some(secret_name.clone());
    let (mint_reason, why) = match decision {
        Decision::Keep { .. } if plan.long_lived => {
            (status.expires_at, status.renew_at) = (None, None);
            let message = format!("long-lived static keys projected ({via}); they do not expire");
            return report(ctx, token, status, Outcome::Valid(message), None).await;
        }
        Decision::Keep {
            renew_at,
            expires_at,
        } => {
            if let Some((renew_at, message)) = keep_recorded(&status, expires_at) {
                return report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await;
            }
            status.renew_at = Some(time(renew_at));
            status.expires_at = Some(time(expires_at));
            let issued = status.issued_at.as_ref().map_or(now, |t| t.0);
            let mut message =
                format!("credential valid until {expires_at}; renewing at {renew_at}");
            if let Some(problem) = renewal::lifetime_problem(issued, expires_at) {
                message = format!("{message}; {problem}");
            }
            return report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await;
        }
        Decision::Mint { reason, message } => (reason, message),
    };
    if let Some(wait) = ctx.held_for(&key) {
        // A recent failure holds AWS calls back; whatever woke us must not bypass that.
        return Ok(Action::requeue(wait));
    }
    info!(reason = mint_reason.as_str(), "minting AWS credentials");
    let credential = match mint_credential(&chain, &plan, &conn).await {
        Ok(c) => c,
        Err(e) => return failed(ctx, token, status, e, current.as_ref()).await,
    };
    let rendered = match output::render(&credential, format) {
        Ok(r) => r,
        Err(e) => {
            let e = ConfigError::new("InvalidSecretFormat", e.to_string());
            return report(ctx, token, status, Outcome::Refused(e), None).await;
        }
    };
    let expires_at = credential.expires_at();
    let token_id = credential.fingerprint();
    let secret = output::build_secret(SecretInputs {
        token,
        rendered,
        connection: (&at.namespace, &at.name),
        request_hash: &request_hash,
        connection_hash: &connection_hash,
        issued_at: now,
        expires_at,
        renew_requested_at: observed.renew_requested_at,
        token_id: &token_id,
    });
    write_secret(&secrets, existing.as_ref(), secret)
        .await
        .map_err(|e| Error::kube("write Secret", &secret_name, e))?;
    status.token_id = Some(token_id);
    status.issued_at = Some(time(now));
    status.revision += 1;
    let minted = format!("minted ({mint_reason}: {why})");
    let Some(expires_at) = expires_at else {
        status.expires_at = None;
        status.renew_at = None;
        let message = format!("{minted}: long-lived static keys ({via}); they do not expire");
        return report(ctx, token, status, Outcome::Valid(message), None).await;
    };
    let (before, jitter) = (observed.renew_before, observed.jitter);
    let renew_at = renewal::renew_at(now, expires_at, before, jitter, Some(now));
    status.expires_at = Some(time(expires_at));
    status.renew_at = Some(time(renew_at));
    let mut message = format!("{minted}; valid until {expires_at}, renewing at {renew_at} ({via})");
    if let Some(problem) = renewal::lifetime_problem(now, expires_at) {
        message = format!("{message}; {problem}");
    }
    report(ctx, token, status, Outcome::Valid(message), Some(renew_at)).await
}
