//! Amazon Web Services and Amazon ECR connections: STS session credentials (GetSessionToken
//! for access keys, AssumeRole for roles, chained through source connections up the tree),
//! projected static keys, or an ECR registry login; the live check is GetCallerIdentity (ECR:
//! the registry login); "Rotate key" replaces an IAM user's access key.

mod chain;
mod keys;
mod plan;

use async_trait::async_trait;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::url::{base, parse_http};
use super::{
    Env, Inputs, Lifetime, Minted, Plan, Provider, ProviderError, Request, RotatedKey,
    SecretValues, Services, Validated, Verification, block,
};
use crate::api::connection::{AwsCredentials, Ecr, EcrRepositoryType};
use crate::api::{Connection, ConnectionKind, ConnectionSpec};
use crate::conditions::reasons;
use crate::output::Credential;
use chain::{Chain, Signer, walk};
use plan::AwsPlan;

/// The longest chain of `iamRole` connections followed before giving up.
pub const MAX_ROLE_CHAIN: usize = 8;

/// The STS endpoint of a region (regional, as AWS recommends), or the one the user set.
pub fn sts_endpoint(region: &str, custom: Option<&str>) -> Result<String, ProviderError> {
    if let Some(custom) = custom {
        return Ok(base(&parse_http("spec.aws.stsEndpoint", custom)?, ""));
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Ok(format!("https://sts.{region}.{suffix}"))
}

/// A stable External ID for a Connection without one: derived from its UID, so it survives
/// operator restarts and changes only when the Connection is re-created.
pub fn external_id(connection_uid: &str) -> String {
    let digest = Sha256::digest(format!("patchbay.dev/external-id\0{connection_uid}"));
    format!("patchbay-{}", &hex::encode(digest)[..32])
}

fn credentials_kind(c: &AwsCredentials) -> &'static str {
    match (&c.access_keys, &c.iam_role, &c.default_chain) {
        (Some(k), _, _) if k.use_session_credentials => "access keys (session credentials)",
        (Some(_), _, _) => "access keys (long-lived)",
        (_, Some(_), _) => "an IAM role",
        _ => "the operator's default credential chain",
    }
}

/// GetSessionToken accepts 900 s to 36 h for IAM users.
const SESSION_TOKEN_BOUNDS: (i32, i32) = (900, 129_600);

/// The aws and ecr kinds: one provider, two blocks.
pub(super) struct AwsProvider {
    kind: ConnectionKind,
}

/// The `aws` kind.
pub(super) const AWS: AwsProvider = AwsProvider {
    kind: ConnectionKind::Aws,
};
/// The `ecr` kind.
pub(super) const ECR: AwsProvider = AwsProvider {
    kind: ConnectionKind::Ecr,
};

fn validate_aws(spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
    let aws = block(&spec.aws, "aws")?;
    let sts = sts_endpoint(&aws.region, aws.sts_endpoint.as_deref())?;
    Ok(Validated {
        summary: format!(
            "AWS {} through {sts} with {}",
            aws.region,
            credentials_kind(&aws.credentials)
        ),
    })
}

fn validate_ecr(spec: &ConnectionSpec) -> Result<Validated, ProviderError> {
    let ecr = block(&spec.ecr, "ecr")?;
    let registry = match (ecr.repository_type, ecr.region.as_deref()) {
        (EcrRepositoryType::Public, _) => "ECR Public (public.ecr.aws)".to_string(),
        (EcrRepositoryType::Private, Some(region)) => {
            format!("ECR private registry in {region}")
        }
        (EcrRepositoryType::Private, None) => {
            return Err(ProviderError::config(
                reasons::INVALID_SPEC,
                "spec.ecr.region: required for a private registry",
            ));
        }
    };
    Ok(Validated {
        summary: format!("{registry} with {}", credentials_kind(&ecr.credentials)),
    })
}

/// The External ID shown in the status of a connection whose role has none of its own.
fn generated_external_id(conn: &Connection) -> Option<String> {
    let role = conn.spec.aws_credentials()?.iam_role.as_ref()?;
    if role.external_id.is_some() {
        return None;
    }
    let recorded = conn.status.as_ref().and_then(|s| s.external_id.clone());
    Some(recorded.unwrap_or_else(|| external_id(&conn.uid().unwrap_or_default())))
}

/// An ECR docker login with `keys`: the account's private registry in the connection's
/// region, or ECR Public.
async fn ecr_login(ecr: &Ecr, signer: &Signer) -> Result<Credential, ProviderError> {
    use super::sts;
    let (keys, ca) = (&signer.keys, signer.ca_bundle.as_ref());
    let login = match ecr.repository_type {
        EcrRepositoryType::Private => {
            let region = ecr.region.clone().unwrap_or_default();
            let endpoint = (ecr.endpoint.clone()).unwrap_or_else(|| sts::ecr_endpoint(&region));
            sts::ecr_login(&sts::ecr_client(&region, &endpoint, keys, ca), None).await
        }
        EcrRepositoryType::Public => {
            let endpoint = (ecr.endpoint.clone()).unwrap_or_else(sts::ecr_public_endpoint);
            let client = sts::ecr_public_client(sts::ECR_PUBLIC_REGION, &endpoint, keys, ca);
            sts::ecr_public_login(&client).await
        }
    };
    Ok(login?)
}

/// Mints what `plan` asks for from the connection's chain.
async fn mint_credential(
    chain: &Chain<'_>,
    plan: &AwsPlan,
    secrets: &SecretValues,
) -> Result<Credential, ProviderError> {
    use super::sts;
    let session = &plan.session;
    if let Some(ecr) = &plan.ecr {
        let signer = chain.sign(secrets, &session.name, Some(session)).await?;
        return ecr_login(ecr, &signer).await;
    }
    let aws = chain.top().spec.aws.as_ref();
    let max = aws.and_then(|a| a.max_session_duration);
    let top = (plan.role_arn.is_none()).then_some(session);
    let mut signer: Signer = chain.sign(secrets, &session.name, top).await?;
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
        let ca = signer.ca_bundle.as_ref();
        let client = sts::sts_client(&signer.region, &signer.sts, &signer.keys, ca);
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

/// The live check: `GetCallerIdentity` with the connection's effective credentials (after
/// assuming its roles); for ecr, the registry login `GetAuthorizationToken`.
async fn verify(
    conn: &Connection,
    env: &Env<'_>,
    secrets: &SecretValues,
) -> Result<String, ProviderError> {
    use super::sts;
    let name = sts::session_name(&conn.namespace().unwrap_or_default(), &conn.name_any());
    let chain = walk(conn, env)?;
    let signer = chain.sign(secrets, &name, None).await?;
    if let Some(ecr) = &conn.spec.ecr {
        let registry = match ecr_login(ecr, &signer).await? {
            Credential::DockerLogin { registry, .. } => registry,
            _ => String::new(),
        };
        return Ok(format!("registry {registry}: login succeeded"));
    }
    let ca = signer.ca_bundle.as_ref();
    let client = sts::sts_client(&signer.region, &signer.sts, &signer.keys, ca);
    let who = sts::caller_identity(&client).await?;
    Ok(format!("account {}, arn {}", who.account, who.arn))
}

#[async_trait]
impl Provider for AwsProvider {
    fn kind(&self) -> ConnectionKind {
        self.kind
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        match self.kind {
            ConnectionKind::Ecr => validate_ecr(spec),
            _ => validate_aws(spec),
        }
    }

    fn check_links(
        &self,
        conn: &Connection,
        env: &Env<'_>,
        mut validated: Validated,
    ) -> Result<Validated, ProviderError> {
        let sources = walk(conn, env)?.sources();
        if !sources.is_empty() {
            validated.summary = format!(
                "{}, assumed with {}",
                validated.summary,
                sources.join(" → ")
            );
        }
        Ok(validated)
    }

    fn external_id(&self, conn: &Connection) -> Option<String> {
        generated_external_id(conn)
    }

    fn inputs(&self, conn: &Connection, env: &Env<'_>) -> Result<Inputs, ProviderError> {
        walk(conn, env)?.inputs()
    }

    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        let plan = AwsPlan::new(request.token, request.connection)?;
        Ok(Plan {
            hash_parts: plan.hash_parts(),
            default_format: plan.default_format,
            lifetime: if plan.long_lived {
                Lifetime::LongLived("static keys")
            } else {
                Lifetime::Expiring
            },
            reads: Vec::new(),
            grant: None,
            late: None,
        })
    }

    async fn verify(
        &self,
        conn: &Connection,
        env: &Env<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Verification {
        verify(conn, env, secrets).await.into()
    }

    async fn mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Result<Minted, ProviderError> {
        let plan = AwsPlan::new(request.token, request.connection)?;
        let chain = walk(request.connection, request.env)?;
        let credential = mint_credential(&chain, &plan, secrets).await?;
        Ok(Minted::credential(credential))
    }

    async fn rotate_key(
        &self,
        conn: &Connection,
        secrets: &SecretValues,
    ) -> Result<RotatedKey, ProviderError> {
        keys::rotate(conn, secrets).await
    }

    async fn other_keys(
        &self,
        conn: &Connection,
        secrets: &SecretValues,
    ) -> Result<Vec<String>, ProviderError> {
        keys::others(conn, secrets).await
    }

    async fn delete_key(
        &self,
        conn: &Connection,
        secrets: &SecretValues,
        key_id: &str,
    ) -> Result<(), ProviderError> {
        keys::delete(conn, secrets, key_id).await
    }
}

#[cfg(test)]
mod tests;
