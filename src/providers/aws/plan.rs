//! What a token asks of its aws or ecr connection, every ceiling applied. Pure.

use kube::ResourceExt;

use super::chain::Session;
use crate::api::connection::Ecr;
use crate::api::token::{AwsTokenRequest, SecretFormat};
use crate::api::{Connection, VcsAuthToken};
use crate::conditions::reasons;
use crate::providers::sts;
use crate::providers::{ProviderError, copy_allowed};

/// A token's AWS request within the connection's ceilings.
#[derive(Clone, Debug)]
pub struct AwsPlan {
    /// The token's own AssumeRole (spec.aws.roleArn), already checked against allowedRoleArns.
    pub role_arn: Option<String>,
    /// How the top role is asked for.
    pub session: Session,
    /// An ECR login instead of STS credentials.
    pub ecr: Option<Ecr>,
    /// Static keys are projected as they are (no session credentials, no role).
    pub long_lived: bool,
    /// The format when the token names none.
    pub default_format: SecretFormat,
}

impl AwsPlan {
    /// The plan for `token` against `conn`, or why the connection refuses it.
    pub fn new(token: &VcsAuthToken, conn: &Connection) -> Result<AwsPlan, ProviderError> {
        if let Some(aws) = &conn.spec.aws
            && !aws.available_for_build_steps
        {
            return Err(ProviderError::config(
                reasons::CONNECTION_NOT_AVAILABLE,
                format!(
                    "Connection {}/{} has spec.aws.availableForBuildSteps: false; it only serves as another connection's iamRole source",
                    conn.namespace().unwrap_or_default(),
                    conn.name_any()
                ),
            ));
        }
        let namespace = token.namespace().unwrap_or_default();
        let name = token.name_any();
        let request = token.spec.aws.as_deref();
        let field = |f: fn(&AwsTokenRequest) -> Option<&String>| request.and_then(f).cloned();
        let role_arn = field(|r| r.role_arn.as_ref());
        if let Some(arn) = &role_arn {
            let allowed = (conn.spec.aws.as_ref())
                .and_then(|a| a.allowed_role_arns.as_deref())
                .unwrap_or_default();
            if !sts::role_allowed(arn, allowed) {
                return Err(ProviderError::config(
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
        // An ECR login is a derived, registry-only credential; aws session credentials made
        // straight from the operator's identity are that identity.
        let operators_own = role_arn.is_none()
            && conn.spec.ecr.is_none()
            && (conn.spec.aws_credentials()).is_some_and(|c| c.default_chain.is_some());
        if long_lived || operators_own {
            let what = if long_lived {
                "the connection's long-lived keys"
            } else {
                "the operator's own identity"
            };
            let instead = "ask for a role (spec.aws.roleArn) or use a connection in this namespace";
            copy_allowed(token, conn, what, instead)?;
        }
        let default_format = match conn.spec.ecr {
            Some(_) => SecretFormat::DockerConfigJson,
            None => SecretFormat::AwsCredentials,
        };
        Ok(AwsPlan {
            role_arn,
            session,
            ecr: conn.spec.ecr.clone(),
            long_lived,
            default_format,
        })
    }

    /// The parts of the request that, when they change, need a new credential.
    pub fn hash_parts(&self) -> Vec<String> {
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
