//! Amazon Web Services and Amazon ECR connections: where their AWS identity comes from.

use sha2::{Digest, Sha256};

use super::url::{base, parse_http};
use super::{ConfigError, Provider, SecretValues, Validated, block};
use crate::api::connection::{AwsCredentials, EcrRepositoryType};
use crate::api::{ConnectionKind, ConnectionSpec};
use crate::hierarchy::{self, ResolveError, Tree};

/// The longest chain of `iamRole` connections followed before giving up.
pub const MAX_ROLE_CHAIN: usize = 8;

/// The STS endpoint of a region (regional, as AWS recommends), or the one the user set.
pub fn sts_endpoint(region: &str, custom: Option<&str>) -> Result<String, ConfigError> {
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

pub(super) struct AwsProvider;

impl Provider for AwsProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::Aws
    }

    fn validate(&self, spec: &ConnectionSpec, _: &SecretValues) -> Result<Validated, ConfigError> {
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
}

pub(super) struct EcrProvider;

impl Provider for EcrProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::Ecr
    }

    fn validate(&self, spec: &ConnectionSpec, _: &SecretValues) -> Result<Validated, ConfigError> {
        let ecr = block(&spec.ecr, "ecr")?;
        let registry = match (ecr.repository_type, ecr.region.as_deref()) {
            (EcrRepositoryType::Public, _) => "ECR Public (public.ecr.aws)".to_string(),
            (EcrRepositoryType::Private, Some(region)) => {
                format!("ECR private registry in {region}")
            }
            (EcrRepositoryType::Private, None) => {
                return Err(ConfigError::new(
                    "InvalidSpec",
                    "spec.ecr.region: required for a private registry",
                ));
            }
        };
        Ok(Validated {
            summary: format!("{registry} with {}", credentials_kind(&ecr.credentials)),
        })
    }
}

/// How an aws or ecr connection's identity is obtained, once its credentials check out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsCheck {
    /// The source connections an `iamRole` goes through, nearest first, as `namespace/name`.
    pub sources: Vec<String>,
}

/// Checks an aws/ecr connection's credentials against the cluster: `defaultChain` only when the
/// operator allows it, and an `iamRole` source that resolves up the tree (from `namespace`) to
/// an aws connection available there, following chains of roles without cycles.
/// `lookup(ns, name)` returns the spec of Connection `name` in `ns`.
pub fn check_aws_credentials<'a>(
    tree: &Tree,
    namespace: &str,
    name: &str,
    spec: &'a ConnectionSpec,
    allow_default_chain: bool,
    lookup: impl Fn(&str, &str) -> Option<&'a ConnectionSpec>,
) -> Result<AwsCheck, ConfigError> {
    let block = if spec.aws.is_some() { "aws" } else { "ecr" };
    let mut credentials = spec
        .aws_credentials()
        .ok_or_else(|| ConfigError::new("InvalidSpec", "spec: not an aws or ecr connection"))?;
    let own_field = format!("spec.{block}.credentials.iamRole.connection");
    let mut field = format!("spec.{block}.credentials");
    let mut at = (namespace.to_string(), name.to_string());
    let mut sources = Vec::new();
    loop {
        if credentials.default_chain.is_some() && !allow_default_chain {
            let via = sources
                .last()
                .map(|s| format!(" (reached through {s})"))
                .unwrap_or_default();
            return Err(ConfigError::new(
                "DefaultChainNotAllowed",
                format!(
                    "{field}.defaultChain: the operator runs without --allow-default-credential-chain{via}; use accessKeys or iamRole"
                ),
            ));
        }
        let Some(role) = &credentials.iam_role else {
            return Ok(AwsCheck { sources });
        };
        let source_field = format!("{field}.iamRole.connection");
        let found = hierarchy::resolve(tree, &at.0, &role.connection, |ns| {
            lookup(ns, &role.connection)
        })
        .map_err(|e| source_error(&source_field, &e))?;
        let source_ref = format!("{}/{}", found.namespace, role.connection);
        if source_ref == format!("{}/{}", namespace, name) || sources.contains(&source_ref) {
            sources.push(source_ref);
            return Err(ConfigError::new(
                "SourceConnectionCycle",
                format!(
                    "{source_field}: source connections form a cycle: {}/{name} → {}",
                    namespace,
                    sources.join(" → ")
                ),
            ));
        }
        sources.push(source_ref.clone());
        if sources.len() > MAX_ROLE_CHAIN {
            return Err(ConfigError::new(
                "SourceConnectionCycle",
                format!(
                    "{source_field}: more than {MAX_ROLE_CHAIN} iamRole connections in a row: {}",
                    sources.join(" → ")
                ),
            ));
        }
        let source = lookup(&found.namespace, &role.connection).ok_or_else(|| {
            ConfigError::new(
                "SourceConnectionNotFound",
                format!("{source_field}: {source_ref} vanished"),
            )
        })?;
        let Some(aws) = &source.aws else {
            return Err(ConfigError::new(
                "SourceConnectionKindMismatch",
                format!(
                    "{source_field}: {source_ref} is a {} connection; an iamRole source must be an aws connection",
                    source.kind().map(|k| k.field_name()).unwrap_or("invalid")
                ),
            ));
        };
        credentials = &aws.credentials;
        field = format!("{own_field} → {source_ref} spec.aws.credentials");
        at = (found.namespace, role.connection.clone());
    }
}

fn source_error(field: &str, e: &ResolveError) -> ConfigError {
    let reason = match e {
        ResolveError::Hierarchy(_) => "InvalidHierarchy",
        ResolveError::NotFound { .. } => "SourceConnectionNotFound",
        ResolveError::NotAvailable { .. } => "SourceConnectionNotAvailable",
    };
    ConfigError::new(reason, format!("{field}: {e}"))
}

#[cfg(test)]
mod tests;
