//! IAM calls for "Rotate key": who the keys belong to, a new key, and deleting the old one.
//! The identity needs `iam:GetUser`, `iam:ListAccessKeys`, `iam:CreateAccessKey` and
//! `iam:DeleteAccessKey` on itself.

use aws_sdk_iam::Client;

use super::StaticKeys;
use super::errors::{Call, StsError, from_sdk};

fn call<'a>(operation: &'static str, region: &'a str) -> Call<'a> {
    Call {
        operation,
        region,
        role_arn: None,
    }
}

fn region(client: &Client) -> String {
    client
        .config()
        .region()
        .map(|r| r.as_ref().to_string())
        .unwrap_or_default()
}

/// The name of the IAM user whose keys sign `client` (`GetUser` without a user name).
pub async fn current_user(client: &Client) -> Result<String, StsError> {
    const OPERATION: &str = "iam:GetUser";
    let region = region(client);
    let out = client
        .get_user()
        .send()
        .await
        .map_err(|e| from_sdk(call(OPERATION, &region), e))?;
    out.user()
        .map(|u| u.user_name().to_string())
        .ok_or_else(|| StsError::InvalidResponse {
            operation: OPERATION,
            detail: "no User in the answer".to_string(),
        })
}

/// The access key IDs of `user` (default: the caller), with whether each is active. IAM allows
/// two keys per user, so rotation must find room for the new one first.
pub async fn list_access_keys(
    client: &Client,
    user: Option<&str>,
) -> Result<Vec<(String, bool)>, StsError> {
    const OPERATION: &str = "iam:ListAccessKeys";
    let region = region(client);
    let out = client
        .list_access_keys()
        .set_user_name(user.map(str::to_string))
        .send()
        .await
        .map_err(|e| from_sdk(call(OPERATION, &region), e))?;
    Ok(out
        .access_key_metadata()
        .iter()
        .filter_map(|k| {
            let active = k.status() == Some(&aws_sdk_iam::types::StatusType::Active);
            k.access_key_id().map(|id| (id.to_string(), active))
        })
        .collect())
}

/// A new access key for `user` (default: the caller). The secret is only ever in this answer.
pub async fn create_access_key(
    client: &Client,
    user: Option<&str>,
) -> Result<StaticKeys, StsError> {
    const OPERATION: &str = "iam:CreateAccessKey";
    let region = region(client);
    let out = client
        .create_access_key()
        .set_user_name(user.map(str::to_string))
        .send()
        .await
        .map_err(|e| from_sdk(call(OPERATION, &region), e))?;
    let key = out.access_key().ok_or_else(|| StsError::InvalidResponse {
        operation: OPERATION,
        detail: "no AccessKey in the answer".to_string(),
    })?;
    Ok(StaticKeys::new(
        key.access_key_id(),
        key.secret_access_key(),
    ))
}

/// Deletes access key `access_key_id` of `user` (default: the caller).
pub async fn delete_access_key(
    client: &Client,
    user: Option<&str>,
    access_key_id: &str,
) -> Result<(), StsError> {
    const OPERATION: &str = "iam:DeleteAccessKey";
    let region = region(client);
    client
        .delete_access_key()
        .set_user_name(user.map(str::to_string))
        .access_key_id(access_key_id)
        .send()
        .await
        .map_err(|e| from_sdk(call(OPERATION, &region), e))?;
    Ok(())
}
