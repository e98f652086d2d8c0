//! The AWS identity of an aws or ecr Connection: its `iamRole` sources resolved up the
//! namespace tree by [`walk`] (the one place a chain is followed, for the Ready check, for
//! minting and for the live check), the keys at its base (access keys from a Secret, or the
//! operator's own default chain), and the roles assumed on the way back up ([`Chain::sign`]).

use std::sync::Arc;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::{MAX_ROLE_CHAIN, external_id, sts_endpoint};
use crate::api::Connection;
use crate::api::connection::{AwsCredentials, IamRole};
use crate::conditions::reasons;
use crate::hierarchy::{self, ResolveError};
use crate::providers::sts::{self, AssumeRoleInput, StaticKeys};
use crate::providers::{CaBundle, Env, Inputs, ProviderError, SecretRead, SecretValues, identity};

/// How the top role of a chain is asked for: the token's session name, tags, duration and
/// policies. Roles further down the chain get the session name and one hour.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// RoleSessionName.
    pub name: String,
    /// Session tags.
    pub tags: Vec<(String, String)>,
    /// DurationSeconds asked for.
    pub duration: Option<i32>,
    /// An inline session policy.
    pub policy: Option<String>,
    /// Managed session policies.
    pub policy_arns: Vec<String>,
}

/// A connection and the source connections its `iamRole` goes through, nearest first.
pub struct Chain<'a> {
    top: &'a Connection,
    sources: Vec<Arc<Connection>>,
    /// The CA bundle of the connection served (`spec.caBundle`): every call trusts it.
    ca_bundle: Option<CaBundle>,
}

/// Keys that sign for a connection, and how they were obtained.
pub struct Signer {
    /// The keys.
    pub keys: StaticKeys,
    /// When the keys expire, if they do (a session, or default-chain credentials).
    pub expires_at: Option<Timestamp>,
    /// The keys are a role session: assuming a further role is role chaining (1 h cap).
    pub role_session: bool,
    /// Region of the nearest aws connection of the chain.
    pub region: String,
    /// STS endpoint of the nearest aws connection of the chain.
    pub sts: String,
    /// The CA bundle the chain's calls trust besides the operator's.
    pub ca_bundle: Option<CaBundle>,
}

/// The aws or ecr credentials block of a connection.
pub fn credentials(conn: &Connection) -> Result<&AwsCredentials, ProviderError> {
    conn.spec.aws_credentials().ok_or_else(|| {
        ProviderError::config(reasons::INVALID_SPEC, "spec: not an aws or ecr connection")
    })
}

fn source_error(field: &str, e: &ResolveError) -> ProviderError {
    let reason = match e {
        ResolveError::Hierarchy(_) => reasons::INVALID_HIERARCHY,
        ResolveError::NotFound { .. } => "SourceConnectionNotFound",
        ResolveError::NotAvailable { .. } => "SourceConnectionNotAvailable",
    };
    ProviderError::config(reason, format!("{field}: {e}"))
}

/// Connection `name` as seen from `namespace`: the nearest one up the tree that is available
/// there.
fn resolve_source(
    env: &Env<'_>,
    namespace: &str,
    name: &str,
) -> Result<(String, Option<Arc<Connection>>), ResolveError> {
    let candidates: Vec<(String, Arc<Connection>)> = (env.tree.ancestry(namespace))
        .map_err(ResolveError::Hierarchy)?
        .into_iter()
        .filter_map(|ns| env.connection(&ns, name).map(|c| (ns, c)))
        .collect();
    let found = hierarchy::resolve(env.tree, namespace, name, |ns| {
        (candidates.iter().find(|(n, _)| n == ns)).map(|(_, c)| &c.spec)
    })?;
    let conn = (candidates.into_iter().find(|(n, _)| *n == found.namespace)).map(|(_, c)| c);
    Ok((found.namespace, conn))
}

/// Follows `top`'s `iamRole` sources up the tree: each must resolve to an aws connection
/// available where it is named, without cycles, at most [`MAX_ROLE_CHAIN`] deep, and a
/// `defaultChain` anywhere on the way needs the operator's permission.
pub fn walk<'a>(top: &'a Connection, env: &Env<'_>) -> Result<Chain<'a>, ProviderError> {
    let block = if top.spec.aws.is_some() { "aws" } else { "ecr" };
    let (namespace, name) = (top.namespace().unwrap_or_default(), top.name_any());
    let own_field = format!("spec.{block}.credentials.iamRole.connection");
    let mut field = format!("spec.{block}.credentials");
    let mut at = namespace.clone();
    let mut sources: Vec<Arc<Connection>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    loop {
        let current = sources.last().map(Arc::as_ref).unwrap_or(top);
        let creds = credentials(current)?;
        if creds.default_chain.is_some() && !env.allow_default_chain {
            let via = (names.last())
                .map(|s| format!(" (reached through {s})"))
                .unwrap_or_default();
            return Err(ProviderError::config(
                "DefaultChainNotAllowed",
                format!(
                    "{field}.defaultChain: the operator runs without --allow-default-credential-chain{via}; use accessKeys or iamRole"
                ),
            ));
        }
        let Some(role) = &creds.iam_role else {
            let ca_bundle = env.ca_bundle.cloned();
            return Ok(Chain {
                top,
                sources,
                ca_bundle,
            });
        };
        let source_field = format!("{field}.iamRole.connection");
        let (found_in, source) = resolve_source(env, &at, &role.connection)
            .map_err(|e| source_error(&source_field, &e))?;
        let source_ref = format!("{found_in}/{}", role.connection);
        if source_ref == format!("{namespace}/{name}") || names.contains(&source_ref) {
            names.push(source_ref);
            return Err(ProviderError::config(
                "SourceConnectionCycle",
                format!(
                    "{source_field}: source connections form a cycle: {namespace}/{name} → {}",
                    names.join(" → ")
                ),
            ));
        }
        names.push(source_ref.clone());
        if names.len() > MAX_ROLE_CHAIN {
            return Err(ProviderError::config(
                "SourceConnectionCycle",
                format!(
                    "{source_field}: more than {MAX_ROLE_CHAIN} iamRole connections in a row: {}",
                    names.join(" → ")
                ),
            ));
        }
        let source = source.ok_or_else(|| {
            ProviderError::config(
                "SourceConnectionNotFound",
                format!("{source_field}: {source_ref} vanished"),
            )
        })?;
        if source.spec.aws.is_none() {
            return Err(ProviderError::config(
                "SourceConnectionKindMismatch",
                format!(
                    "{source_field}: {source_ref} is a {} connection; an iamRole source must be an aws connection",
                    source
                        .spec
                        .kind()
                        .map(|k| k.field_name())
                        .unwrap_or("invalid")
                ),
            ));
        }
        if found_in != at {
            crossing_allowed(&field, role, &source, &source_ref)?;
        }
        sources.push(source);
        field = format!("{own_field} → {source_ref} spec.aws.credentials");
        at = found_in;
    }
}

/// Whether a role may be assumed with the identity of a source in another namespace: the
/// source's `allowedRoleArns` must list it (a source bounds every role assumed with its
/// identity, by tokens and by other connections alike), and the External ID is patchbay's
/// generated one, which the tenant cannot choose.
fn crossing_allowed(
    field: &str,
    role: &IamRole,
    source: &Connection,
    source_ref: &str,
) -> Result<(), ProviderError> {
    let allowed = (source.spec.aws.as_ref())
        .and_then(|a| a.allowed_role_arns.as_deref())
        .unwrap_or_default();
    if !sts::role_allowed(&role.role_arn, allowed) {
        return Err(ProviderError::config(
            "RoleNotAllowed",
            format!(
                "{field}.iamRole.roleArn: {} matches none of {source_ref}'s allowedRoleArns; a source in another namespace lends its identity only to the roles it lists",
                role.role_arn
            ),
        ));
    }
    if role.external_id.is_some() {
        return Err(ProviderError::config(
            "ExternalIdNotAllowed",
            format!(
                "{field}.iamRole.externalId: may be set only when the source is in this namespace; through {source_ref}, patchbay's generated External ID (status.externalId) is used"
            ),
        ));
    }
    Ok(())
}

fn region_and_sts(conn: &Connection) -> Result<Option<(String, String)>, ProviderError> {
    match &conn.spec.aws {
        Some(aws) => Ok(Some((
            aws.region.clone(),
            sts_endpoint(&aws.region, aws.sts_endpoint.as_deref())?,
        ))),
        None => Ok(None),
    }
}

/// The operator's own credentials (environment, profile, web identity, instance metadata).
async fn default_chain() -> Result<(StaticKeys, Option<Timestamp>), ProviderError> {
    use aws_sdk_sts::config::ProvideCredentials;
    let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .build()
        .await;
    let c = chain.provide_credentials().await.map_err(|e| {
        ProviderError::transient(
            "DefaultChainUnavailable",
            format!("the operator's default credential chain has no credentials: {e}"),
        )
    })?;
    let expires_at = c
        .expiry()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .and_then(|s| Timestamp::from_second(s).ok());
    // Temporary credentials without a stated expiry (AWS_SESSION_TOKEN in the environment) are
    // read again within the hour rather than projected as if they never expired.
    let expires_at = match (expires_at, c.session_token()) {
        (None, Some(_)) => Timestamp::now()
            .checked_add(SignedDuration::from_hours(1))
            .ok(),
        (found, _) => found,
    };
    let keys = StaticKeys {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: c.session_token().map(str::to_string),
    };
    Ok((keys, expires_at))
}

impl Chain<'_> {
    /// The connection the chain starts at.
    pub fn top(&self) -> &Connection {
        self.top
    }

    /// Whether the top connection has its own keys (access keys or the default chain), no role.
    pub fn direct(&self) -> bool {
        self.sources.is_empty()
    }

    /// The source connections as `namespace/name`, nearest first.
    pub fn sources(&self) -> Vec<String> {
        (self.sources.iter())
            .map(|c| format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any()))
            .collect()
    }

    /// The connection at the base of the chain, whose credentials sign for all above it.
    fn base(&self) -> &Connection {
        self.sources.last().map(Arc::as_ref).unwrap_or(self.top)
    }

    /// What the chain's credentials depend on: every link's uid and generation, and the base
    /// connection's access-key Secrets (in the base's namespace).
    pub fn inputs(&self) -> Result<Inputs, ProviderError> {
        let links = std::iter::once(self.top).chain(self.sources.iter().map(Arc::as_ref));
        let depends_on = links.flat_map(identity).collect();
        let base = self.base();
        let namespace = base.namespace().unwrap_or_default();
        let reads = match &credentials(base)?.access_keys {
            Some(k) => vec![
                SecretRead::new(&namespace, &k.access_key_id.name),
                SecretRead::new(&namespace, &k.secret_access_key.name),
            ],
            None => Vec::new(),
        };
        Ok(Inputs { reads, depends_on })
    }

    /// The base keys: access keys from the base connection's Secret, or the operator's own.
    async fn base_keys(
        &self,
        secrets: &SecretValues,
    ) -> Result<(StaticKeys, Option<Timestamp>), ProviderError> {
        let base = self.base();
        let namespace = base.namespace().unwrap_or_default();
        let creds = credentials(base)?;
        match (&creds.access_keys, &creds.default_chain) {
            (Some(k), _) => {
                let field = "credentials.accessKeys";
                let id_field = format!("{field}.accessKeyId");
                let id = secrets.text_in(&id_field, &namespace, &k.access_key_id)?;
                let secret_field = format!("{field}.secretAccessKey");
                let secret = secrets.text_in(&secret_field, &namespace, &k.secret_access_key)?;
                Ok((StaticKeys::new(id.trim(), secret.trim()), None))
            }
            (None, Some(_)) => default_chain().await,
            (None, None) => Err(ProviderError::config(
                reasons::INVALID_SPEC,
                "credentials: neither accessKeys, iamRole nor defaultChain is set",
            )),
        }
    }

    /// Signs for the top connection: the base keys, then each role up the chain assumed with
    /// the keys below it. `top` shapes the top connection's own AssumeRole, if it has one.
    pub async fn sign(
        &self,
        secrets: &SecretValues,
        session_name: &str,
        top: Option<&Session>,
    ) -> Result<Signer, ProviderError> {
        let base = self.base();
        let (region, sts) = match region_and_sts(base)? {
            Some(found) => found,
            // An ecr connection with its own keys: its region's STS.
            None => {
                let region = (base.spec.ecr.as_ref().and_then(|e| e.region.clone()))
                    .unwrap_or_else(|| sts::ECR_PUBLIC_REGION.to_string());
                let sts = sts_endpoint(&region, None)?;
                (region, sts)
            }
        };
        let (keys, expires_at) = self.base_keys(secrets).await?;
        let mut signer = Signer {
            keys,
            expires_at,
            role_session: false,
            region,
            sts,
            ca_bundle: self.ca_bundle.clone(),
        };
        let links: Vec<&Connection> = std::iter::once(self.top)
            .chain(self.sources.iter().map(Arc::as_ref))
            .collect();
        for (i, link) in links.iter().enumerate().rev().skip(1) {
            let Some(role) = &credentials(link)?.iam_role else {
                continue;
            };
            if let Some((region, sts)) = region_and_sts(link)? {
                (signer.region, signer.sts) = (region, sts);
            }
            let default = Session {
                name: session_name.to_string(),
                ..Session::default()
            };
            let session = top.filter(|_| i == 0).unwrap_or(&default);
            let max = link.spec.aws.as_ref().and_then(|a| a.max_session_duration);
            let external = role.external_id.clone().or_else(|| {
                let status = link.status.as_ref().and_then(|s| s.external_id.clone());
                Some(status.unwrap_or_else(|| external_id(&link.uid().unwrap_or_default())))
            });
            signer = signer
                .assume(&role.role_arn, external, session, max)
                .await?;
        }
        Ok(signer)
    }
}

impl Signer {
    /// Assumes `role_arn` with these keys, as `session` asks.
    pub async fn assume(
        self,
        role_arn: &str,
        external_id: Option<String>,
        session: &Session,
        max_session: Option<i32>,
    ) -> Result<Signer, ProviderError> {
        let client = sts::sts_client(&self.region, &self.sts, &self.keys, self.ca_bundle.as_ref());
        let input = AssumeRoleInput {
            role_arn: role_arn.to_string(),
            session_name: session.name.clone(),
            external_id,
            duration_secs: sts::effective_duration(
                session.duration,
                max_session,
                self.role_session,
            ),
            tags: session.tags.clone(),
            policy: session.policy.clone(),
            policy_arns: session.policy_arns.clone(),
        };
        let credential = sts::assume_role(&client, &input).await?;
        let keys = StaticKeys::from_credential(&credential).ok_or_else(|| {
            ProviderError::transient(
                reasons::INVALID_RESPONSE,
                "sts:AssumeRole returned no AWS credentials",
            )
        })?;
        Ok(Signer {
            keys,
            expires_at: credential.expires_at(),
            role_session: true,
            ..self
        })
    }
}
