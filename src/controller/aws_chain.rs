//! The AWS identity of an aws or ecr Connection: its `iamRole` sources resolved up the
//! namespace tree, the keys at the base of that chain (access keys from a Secret, or the
//! operator's own default chain), and the roles assumed on the way back up. Minting and the
//! Verified live check both sign with what [`Chain::sign`] returns.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::Context;
use super::mint::{Failure, read_key};
use crate::api::Connection;
use crate::api::connection::AwsCredentials;
use crate::hierarchy;
use crate::providers::sts::{self, AssumeRoleInput, StaticKeys, StsError};
use crate::providers::{ConfigError, MAX_ROLE_CHAIN, external_id, sts_endpoint};

impl From<StsError> for Failure {
    fn from(e: StsError) -> Self {
        Self {
            reason: e.reason(),
            message: e.to_string(),
            retry_after: e.retry_after(),
            permanent: !e.is_transient(),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self {
            reason: e.reason,
            message: e.message,
            retry_after: None,
            permanent: true,
        }
    }
}

/// How the top role of a chain is asked for: the token's session name, tags, duration and
/// policies. Roles further down the chain get the session name and one hour.
#[derive(Clone, Debug, Default)]
pub(super) struct Session {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub duration: Option<i32>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
}

/// Where the keys at the base of a chain come from.
enum Base {
    /// An IAM user's keys, read from the base connection's Secret.
    Keys(StaticKeys),
    /// The operator's own identity.
    DefaultChain,
}

/// A connection and its sources, nearest first, with the base keys read (no AWS call yet).
pub(super) struct Chain {
    links: Vec<Arc<Connection>>,
    base: Base,
    /// What the connection's credentials depend on: uids, generations, Secret versions.
    pub inputs: Vec<String>,
}

/// Keys that sign for a connection, and how they were obtained.
pub(super) struct Signer {
    pub keys: StaticKeys,
    /// When the keys expire, if they do (a session, or default-chain credentials).
    pub expires_at: Option<Timestamp>,
    /// The keys are a role session: assuming a further role is role chaining (1 h cap).
    pub role_session: bool,
    /// Region and STS endpoint of the nearest aws connection of the chain.
    pub region: String,
    pub sts: String,
}

fn aws_region_and_sts(conn: &Connection) -> Result<Option<(String, String)>, ConfigError> {
    match &conn.spec.aws {
        Some(aws) => Ok(Some((
            aws.region.clone(),
            sts_endpoint(&aws.region, aws.sts_endpoint.as_deref())?,
        ))),
        None => Ok(None),
    }
}

fn credentials(conn: &Connection) -> Result<&AwsCredentials, ConfigError> {
    conn.spec
        .aws_credentials()
        .ok_or_else(|| ConfigError::new("InvalidSpec", "spec: not an aws or ecr connection"))
}

/// Resolves `conn`'s source connections and reads the base keys.
pub(super) async fn resolve(ctx: &Context, conn: Arc<Connection>) -> Result<Chain, Failure> {
    let tree = ctx.tree();
    let connections = ctx.connections.state();
    let mut links = vec![conn];
    loop {
        let last = links[links.len() - 1].clone();
        let namespace = last.namespace().unwrap_or_default();
        let creds = credentials(&last)?;
        let Some(role) = &creds.iam_role else { break };
        if links.len() > MAX_ROLE_CHAIN {
            let e = ConfigError::new(
                "SourceConnectionCycle",
                format!("more than {MAX_ROLE_CHAIN} iamRole connections in a row"),
            );
            return Err(e.into());
        }
        let find = |ns: &str| {
            connections
                .iter()
                .find(|c| c.namespace().as_deref() == Some(ns) && c.name_any() == role.connection)
        };
        let field = "credentials.iamRole.connection";
        let found = hierarchy::resolve(&tree, &namespace, &role.connection, |ns| {
            find(ns).map(|c| &c.spec)
        })
        .map_err(|e| ConfigError::new("SourceConnectionNotFound", format!("{field}: {e}")))?;
        let source = find(&found.namespace).cloned().ok_or_else(|| {
            ConfigError::new("SourceConnectionNotFound", format!("{field}: vanished"))
        })?;
        links.push(source);
    }
    let mut inputs: Vec<String> = links
        .iter()
        .flat_map(|c| {
            let generation = c.metadata.generation.unwrap_or_default();
            [c.uid().unwrap_or_default(), generation.to_string()]
        })
        .collect();
    let last = links[links.len() - 1].clone();
    let namespace = last.namespace().unwrap_or_default();
    let creds = credentials(&last)?;
    let base = match (&creds.access_keys, &creds.default_chain) {
        (Some(k), _) => {
            let field = "credentials.accessKeys";
            let id_field = format!("{field}.accessKeyId");
            let (id, id_version) = read_key(ctx, &namespace, &id_field, &k.access_key_id).await?;
            let secret_field = format!("{field}.secretAccessKey");
            let (secret, secret_version) =
                read_key(ctx, &namespace, &secret_field, &k.secret_access_key).await?;
            inputs.extend([id_version, secret_version]);
            Base::Keys(StaticKeys::new(id.trim(), secret.trim()))
        }
        (None, Some(_)) if ctx.options.allow_default_credential_chain => Base::DefaultChain,
        _ => {
            let e = ConfigError::new(
                "DefaultChainNotAllowed",
                "credentials.defaultChain: the operator runs without --allow-default-credential-chain",
            );
            return Err(e.into());
        }
    };
    Ok(Chain {
        links,
        base,
        inputs,
    })
}

/// The operator's own credentials (environment, profile, web identity, instance metadata).
async fn default_chain() -> Result<(StaticKeys, Option<Timestamp>), Failure> {
    use aws_sdk_sts::config::ProvideCredentials;
    let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .build()
        .await;
    let c = chain.provide_credentials().await.map_err(|e| Failure {
        reason: "DefaultChainUnavailable",
        message: format!("the operator's default credential chain has no credentials: {e}"),
        retry_after: None,
        permanent: false,
    })?;
    let expires_at = c
        .expiry()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| Timestamp::from_second(d.as_secs() as i64).ok());
    // Temporary credentials without a stated expiry (AWS_SESSION_TOKEN in the environment) are
    // read again within the hour rather than projected as if they never expired.
    let hour = k8s_openapi::jiff::SignedDuration::from_hours(1);
    let expires_at = match (expires_at, c.session_token()) {
        (None, Some(_)) => Timestamp::now().checked_add(hour).ok(),
        (found, _) => found,
    };
    let keys = StaticKeys {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: c.session_token().map(str::to_string),
    };
    Ok((keys, expires_at))
}

impl Chain {
    /// The connection the chain starts at.
    pub fn top(&self) -> &Connection {
        &self.links[0]
    }

    /// Whether the top connection has its own keys (access keys or the default chain), no role.
    pub fn direct(&self) -> bool {
        self.links.len() == 1
    }

    /// Signs for the top connection: the base keys, then each role up the chain assumed with
    /// the keys below it. `top` shapes the top connection's own AssumeRole, if it has one.
    pub async fn sign(&self, session_name: &str, top: Option<&Session>) -> Result<Signer, Failure> {
        let base = self.links.last().map(Arc::as_ref).unwrap_or(self.top());
        let (region, sts) = match aws_region_and_sts(base)? {
            Some(found) => found,
            // An ecr connection with its own keys: its region's STS.
            None => {
                let region = (base.spec.ecr.as_ref().and_then(|e| e.region.clone()))
                    .unwrap_or_else(|| sts::ECR_PUBLIC_REGION.to_string());
                let sts = sts_endpoint(&region, None)?;
                (region, sts)
            }
        };
        let (keys, expires_at) = match &self.base {
            Base::Keys(keys) => (keys.clone(), None),
            Base::DefaultChain => default_chain().await?,
        };
        let mut signer = Signer {
            keys,
            expires_at,
            role_session: false,
            region,
            sts,
        };
        for (i, link) in self.links.iter().enumerate().rev().skip(1) {
            let Some(role) = &credentials(link)?.iam_role else {
                continue;
            };
            if let Some((region, sts)) = aws_region_and_sts(link)? {
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
    ) -> Result<Signer, Failure> {
        let client = sts::sts_client(&self.region, &self.sts, &self.keys);
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
        let keys = StaticKeys::from_credential(&credential).ok_or_else(|| Failure {
            reason: "InvalidResponse",
            message: "sts:AssumeRole returned no AWS credentials".into(),
            retry_after: None,
            permanent: false,
        })?;
        Ok(Signer {
            keys,
            expires_at: credential.expires_at(),
            role_session: true,
            ..self
        })
    }
}

/// The Verified live check of an aws or ecr connection: for aws, `GetCallerIdentity` with the
/// connection's effective credentials (after assuming its roles); for ecr, also the registry
/// login, `GetAuthorizationToken`.
pub(super) async fn verify(
    ctx: &Context,
    conn: Arc<Connection>,
) -> Result<String, (&'static str, String)> {
    let fail = |f: Failure| (f.reason, f.message);
    let name = sts::session_name(&conn.namespace().unwrap_or_default(), &conn.name_any());
    let chain = resolve(ctx, conn.clone()).await.map_err(fail)?;
    let signer = chain.sign(&name, None).await.map_err(fail)?;
    if let Some(ecr) = &conn.spec.ecr {
        let login = super::aws::ecr_login(ecr, &signer.keys)
            .await
            .map_err(fail)?;
        let registry = match &login {
            crate::output::Credential::DockerLogin { registry, .. } => registry.clone(),
            _ => String::new(),
        };
        return Ok(format!("registry {registry}: login succeeded"));
    }
    let client = sts::sts_client(&signer.region, &signer.sts, &signer.keys);
    let who = sts::caller_identity(&client)
        .await
        .map_err(|e| fail(e.into()))?;
    Ok(format!("account {}, arn {}", who.account, who.arn))
}
