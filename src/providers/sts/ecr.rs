//! ECR registry logins: `GetAuthorizationToken` of ECR (private) and ECR Public, turned into the
//! docker login a `kubernetes.io/dockerconfigjson` Secret carries.

use k8s_openapi::jiff::Timestamp;

use super::errors::{Call, StsError, from_sdk};
use super::timestamp;
use crate::output::Credential;

/// The registry host of ECR Public.
pub const ECR_PUBLIC_REGISTRY: &str = "public.ecr.aws";

/// The host of a registry endpoint, without scheme, port-less default, path or trailing slash:
/// `https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/` → `123456789012.dkr.ecr.eu-west-1.amazonaws.com`.
pub fn registry_host(endpoint: &str) -> Option<String> {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A docker login from an ECR authorization token (base64 of `user:password`, `AWS:...` in
/// practice) for `registry`. The expiry is reported as given, even when it is already past.
pub fn docker_login(
    authorization_token: &str,
    registry: &str,
    expires_at: Option<Timestamp>,
) -> Result<Credential, String> {
    let decoded =
        decode_base64(authorization_token.trim()).ok_or("the authorization token is not base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "the authorization token is not UTF-8")?;
    let (username, password) = text
        .split_once(':')
        .ok_or("the authorization token is not user:password")?;
    if username.is_empty() || password.is_empty() {
        return Err("the authorization token has an empty user or password".to_string());
    }
    Ok(Credential::DockerLogin {
        registry: registry.to_string(),
        username: username.to_string(),
        password: password.to_string(),
        expires_at,
    })
}

/// Standard base64 (with or without padding). ECR tokens are the only base64 this crate reads,
/// so a dozen lines here beat another dependency.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            bits |= value(*c)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn unusable(operation: &'static str, detail: impl Into<String>) -> StsError {
    StsError::InvalidResponse {
        operation,
        detail: detail.into(),
    }
}

/// A docker login for the private registry of the account whose credentials sign `client`, in
/// the client's region. The registry host is the one ECR's `proxyEndpoint` names
/// (`{account}.dkr.ecr.{region}.amazonaws.com`) unless `registry_host` overrides it (the
/// token is valid for every registry the identity may pull from, e.g. another account's).
/// ECR tokens last 12 hours; the expiry is reported as ECR gives it, even when in the past.
pub async fn ecr_login(
    client: &aws_sdk_ecr::Client,
    registry_host: Option<&str>,
) -> Result<Credential, StsError> {
    const OPERATION: &str = "ecr:GetAuthorizationToken";
    let region = client
        .config()
        .region()
        .map(|r| r.as_ref().to_string())
        .unwrap_or_default();
    let out = client.get_authorization_token().send().await.map_err(|e| {
        let call = Call {
            operation: OPERATION,
            region: &region,
            role_arn: None,
        };
        from_sdk(call, e)
    })?;
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| unusable(OPERATION, "no authorizationData"))?;
    let token = data
        .authorization_token()
        .ok_or_else(|| unusable(OPERATION, "no authorizationToken"))?;
    let registry = match registry_host {
        Some(host) => host.to_string(),
        None => data
            .proxy_endpoint()
            .and_then(self::registry_host)
            .ok_or_else(|| unusable(OPERATION, "no usable proxyEndpoint"))?,
    };
    docker_login(token, &registry, data.expires_at().and_then(timestamp))
        .map_err(|e| unusable(OPERATION, e))
}

/// A docker login for ECR Public (`public.ecr.aws`); `client` must be built for
/// [`ECR_PUBLIC_REGION`](super::ECR_PUBLIC_REGION).
pub async fn ecr_public_login(client: &aws_sdk_ecrpublic::Client) -> Result<Credential, StsError> {
    const OPERATION: &str = "ecr-public:GetAuthorizationToken";
    let region = client
        .config()
        .region()
        .map(|r| r.as_ref().to_string())
        .unwrap_or_default();
    let out = client.get_authorization_token().send().await.map_err(|e| {
        let call = Call {
            operation: OPERATION,
            region: &region,
            role_arn: None,
        };
        from_sdk(call, e)
    })?;
    let data = out
        .authorization_data()
        .ok_or_else(|| unusable(OPERATION, "no authorizationData"))?;
    let token = data
        .authorization_token()
        .ok_or_else(|| unusable(OPERATION, "no authorizationToken"))?;
    docker_login(
        token,
        ECR_PUBLIC_REGISTRY,
        data.expires_at().and_then(timestamp),
    )
    .map_err(|e| unusable(OPERATION, e))
}
