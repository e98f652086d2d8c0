//! "Rotate key" for accessKeys connections, the IAM side: create the replacement key (at most
//! two keys per user, as IAM allows) and delete the previous one after its retention. The
//! controller decides when, and writes the new key into the connection's Secret.

use kube::ResourceExt;

use super::chain::credentials;
use crate::api::Connection;
use crate::api::connection::AccessKeys;
use crate::conditions::reasons;
use crate::providers::sts::{self, StaticKeys};
use crate::providers::{ProviderError, RotatedKey, SecretValues, SecretWrite};

/// The IAM endpoint for a connection: a custom (non-AWS) STS endpoint serves IAM too, as
/// S3-compatible alternatives and local emulators do; otherwise IAM's own.
pub fn iam_endpoint(region: &str, sts_endpoint: Option<&str>) -> String {
    match sts_endpoint {
        Some(e) if !e.contains(".amazonaws.com") => e.trim_end_matches('/').to_string(),
        _ => sts::iam_endpoint(region),
    }
}

/// The connection's access keys and an IAM client signed with them.
fn iam_client<'a>(
    conn: &'a Connection,
    secrets: &SecretValues,
) -> Result<(&'a AccessKeys, StaticKeys, aws_sdk_iam::Client), ProviderError> {
    let (region, sts_endpoint) = match (&conn.spec.aws, &conn.spec.ecr) {
        (Some(a), _) => (a.region.clone(), a.sts_endpoint.clone()),
        (None, Some(e)) => (
            e.region.clone().unwrap_or_else(|| "us-east-1".into()),
            e.endpoint.clone(),
        ),
        _ => (String::new(), None),
    };
    let keys = credentials(conn)?.access_keys.as_ref().ok_or_else(|| {
        ProviderError::config(
            reasons::INVALID_SPEC,
            "credentials.accessKeys: only access keys can be rotated",
        )
    })?;
    let namespace = conn.namespace().unwrap_or_default();
    let field = "spec.aws.credentials.accessKeys";
    let id = secrets.text_in(
        &format!("{field}.accessKeyId"),
        &namespace,
        &keys.access_key_id,
    )?;
    let secret = secrets.text_in(
        &format!("{field}.secretAccessKey"),
        &namespace,
        &keys.secret_access_key,
    )?;
    let current = StaticKeys::new(id.trim(), secret.trim());
    let endpoint = iam_endpoint(&region, sts_endpoint.as_deref());
    // Key rotation runs for the connection itself, without a token's request: it trusts the
    // operator's CAs (and goes through its proxy), not a bundle of the connection's.
    let client = sts::iam_client(sts::iam_region(&region), &endpoint, &current, None);
    Ok((keys, current, client))
}

/// Creates the replacement key; returns what to write where, and the replaced key's id.
pub async fn rotate(
    conn: &Connection,
    secrets: &SecretValues,
) -> Result<RotatedKey, ProviderError> {
    let (keys, current, iam) = iam_client(conn, secrets)?;
    let in_use = sts::list_access_keys(&iam, None).await?;
    if in_use.len() >= 2 {
        return Err(ProviderError::config(
            "TooManyAccessKeys",
            format!(
                "the IAM user already has {} access keys (IAM allows two); delete the unused one first",
                in_use.len()
            ),
        ));
    }
    let new = sts::create_access_key(&iam, None).await?;
    let namespace = conn.namespace().unwrap_or_default();
    let write = |r: &crate::api::SecretKeyRef, value: &str| SecretWrite {
        namespace: namespace.clone(),
        name: r.name.clone(),
        key: r.key.clone(),
        value: value.as_bytes().to_vec(),
        replaces: None,
    };
    Ok(RotatedKey {
        writes: vec![
            write(&keys.access_key_id, &new.access_key_id),
            write(&keys.secret_access_key, &new.secret_access_key),
        ],
        previous_id: current.access_key_id,
    })
}

/// The IAM user's access key ids other than the one the connection signs with.
pub async fn others(
    conn: &Connection,
    secrets: &SecretValues,
) -> Result<Vec<String>, ProviderError> {
    let (_, current, iam) = iam_client(conn, secrets)?;
    let keys = sts::list_access_keys(&iam, None).await?;
    Ok((keys.into_iter())
        .map(|(id, _)| id)
        .filter(|id| *id != current.access_key_id)
        .collect())
}

/// Deletes the replaced key `key_id`, signed with the connection's current keys.
pub async fn delete(
    conn: &Connection,
    secrets: &SecretValues,
    key_id: &str,
) -> Result<(), ProviderError> {
    let (_, _, iam) = iam_client(conn, secrets)?;
    Ok(sts::delete_access_key(&iam, None, key_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_sts_endpoint_serves_iam_too() {
        assert_eq!(
            iam_endpoint("eu-west-1", Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            iam_endpoint("eu-west-1", Some("https://sts.eu-west-1.amazonaws.com")),
            sts::iam_endpoint("eu-west-1")
        );
    }
}
