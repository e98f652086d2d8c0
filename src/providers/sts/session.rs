//! STS calls: session credentials, AssumeRole and the caller's identity.

use aws_sdk_sts::Client;
use aws_sdk_sts::types::{PolicyDescriptorType, Tag};

use super::errors::{Call, StsError, from_sdk};
use super::timestamp;
use crate::output::Credential;

fn region(client: &Client) -> String {
    client
        .config()
        .region()
        .map(|r| r.as_ref().to_string())
        .unwrap_or_default()
}

fn credential(
    operation: &'static str,
    region: String,
    credentials: Option<&aws_sdk_sts::types::Credentials>,
) -> Result<Credential, StsError> {
    let c = credentials.ok_or_else(|| StsError::InvalidResponse {
        operation,
        detail: "no Credentials in the answer".to_string(),
    })?;
    let expires_at = timestamp(c.expiration()).ok_or_else(|| StsError::InvalidResponse {
        operation,
        detail: "Expiration is out of range".to_string(),
    })?;
    Ok(Credential::Aws {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: Some(c.session_token().to_string()),
        region,
        expires_at: Some(expires_at),
    })
}

/// Temporary credentials for the IAM user whose keys sign `client` (`GetSessionToken`), valid
/// for `duration_secs` (STS accepts 900 to 129600 for IAM users).
pub async fn get_session_token(
    client: &Client,
    duration_secs: i32,
) -> Result<Credential, StsError> {
    const OPERATION: &str = "sts:GetSessionToken";
    let region = region(client);
    let out = client
        .get_session_token()
        .duration_seconds(duration_secs)
        .send()
        .await
        .map_err(|e| {
            let call = Call {
                operation: OPERATION,
                region: &region,
                role_arn: None,
            };
            from_sdk(call, e)
        })?;
    credential(OPERATION, region, out.credentials())
}

/// What to ask `AssumeRole` for. Build the parts with the pure helpers:
/// [`session_name`](super::session_name), [`session_tags`](super::session_tags),
/// [`effective_duration`](super::effective_duration), and check the role with
/// [`role_allowed`](super::role_allowed) before calling.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AssumeRoleInput {
    /// The role to assume.
    pub role_arn: String,
    /// The role session name (`[\w+=,.@-]{2,64}`).
    pub session_name: String,
    /// The External ID the role's trust policy requires.
    pub external_id: Option<String>,
    /// Session lifetime in seconds.
    pub duration_secs: i32,
    /// Session tags, in order.
    pub tags: Vec<(String, String)>,
    /// An inline session policy (JSON) that further restricts the session.
    pub policy: Option<String>,
    /// Managed policy ARNs that further restrict the session.
    pub policy_arns: Vec<String>,
}

/// Assumes `input.role_arn` with the credentials that sign `client`. A refusal (trust policy,
/// External ID, missing `sts:AssumeRole` permission) is [`StsError::AssumeRoleDenied`].
pub async fn assume_role(client: &Client, input: &AssumeRoleInput) -> Result<Credential, StsError> {
    const OPERATION: &str = "sts:AssumeRole";
    let region = region(client);
    let invalid = |detail: String| StsError::InvalidRequest {
        operation: OPERATION,
        code: "InvalidInput".to_string(),
        detail,
    };
    let tags = input
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("session tag: {e}")))?;
    let policy_arns = input
        .policy_arns
        .iter()
        .map(|arn| PolicyDescriptorType::builder().arn(arn).build())
        .collect::<Vec<_>>();
    let out = client
        .assume_role()
        .role_arn(&input.role_arn)
        .role_session_name(&input.session_name)
        .set_external_id(input.external_id.clone())
        .duration_seconds(input.duration_secs)
        .set_tags((!tags.is_empty()).then_some(tags))
        .set_policy(input.policy.clone())
        .set_policy_arns((!policy_arns.is_empty()).then_some(policy_arns))
        .send()
        .await
        .map_err(|e| {
            let call = Call {
                operation: OPERATION,
                region: &region,
                role_arn: Some(&input.role_arn),
            };
            from_sdk(call, e)
        })?;
    credential(OPERATION, region, out.credentials())
}

/// Who the credentials that sign a client are: the "Test connection" answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The 12-digit account ID.
    pub account: String,
    /// The principal's ARN, e.g. `arn:aws:sts::123456789012:assumed-role/ci/ns.name`.
    pub arn: String,
    /// The unique ID of the principal (`AIDA...`, or `AROA...:session` for a role session).
    pub user_id: String,
}

/// `GetCallerIdentity`: needs no permission, so it fails only on bad credentials.
pub async fn caller_identity(client: &Client) -> Result<Identity, StsError> {
    const OPERATION: &str = "sts:GetCallerIdentity";
    let region = region(client);
    let out = client.get_caller_identity().send().await.map_err(|e| {
        let call = Call {
            operation: OPERATION,
            region: &region,
            role_arn: None,
        };
        from_sdk(call, e)
    })?;
    let field = |value: Option<&str>, name: &str| {
        value
            .map(str::to_string)
            .ok_or_else(|| StsError::InvalidResponse {
                operation: OPERATION,
                detail: format!("no {name} in the answer"),
            })
    };
    Ok(Identity {
        account: field(out.account(), "Account")?,
        arn: field(out.arn(), "Arn")?,
        user_id: field(out.user_id(), "UserId")?,
    })
}
