//! A credential laid out as Secret data in each `spec.secret.format`: the keys and the Secret
//! `type` each format writes, and the error for a format that cannot hold the credential.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;

use super::credential::Credential;
use crate::api::token::SecretFormat;
use crate::conditions::reasons;

/// The name of a format as `spec.secret.format` spells it.
pub fn format_name(format: SecretFormat) -> String {
    let name = serde_json::to_value(format).ok();
    name.and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The Secret `type` a format writes.
pub fn secret_type(format: SecretFormat) -> &'static str {
    match format {
        SecretFormat::BasicAuth => "kubernetes.io/basic-auth",
        SecretFormat::DockerConfigJson => "kubernetes.io/dockerconfigjson",
        _ => "Opaque",
    }
}

/// A format that cannot hold the credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.secret.format: {} cannot hold a {credential} credential; use {}", format_name(*format),
    allowed.iter().map(|f| format_name(*f)).collect::<Vec<_>>().join(" or "))]
pub struct FormatError {
    /// The format asked for.
    pub format: SecretFormat,
    /// The kind of credential minted.
    pub credential: &'static str,
    /// The formats that fit it.
    pub allowed: &'static [SecretFormat],
}

impl FormatError {
    /// The condition reason this error reports as.
    pub fn reason(&self) -> &'static str {
        reasons::INVALID_SECRET_FORMAT
    }
}

/// A credential laid out as Secret data. `Debug` shows the keys only.
#[derive(Clone, PartialEq)]
pub struct Rendered {
    /// The Secret `type`.
    pub type_: String,
    /// The Secret data.
    pub data: BTreeMap<String, ByteString>,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("type_", &self.type_)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Lays `credential` out in `format`, or says why the format does not fit it.
pub fn render(credential: &Credential, format: SecretFormat) -> Result<Rendered, FormatError> {
    let (kind, allowed) = credential.kind_and_formats();
    if !allowed.contains(&format) {
        let credential = kind;
        return Err(FormatError {
            format,
            credential,
            allowed,
        });
    }
    let mut data = BTreeMap::new();
    let mut put = |key: &str, value: &str| {
        data.insert(key.to_owned(), ByteString(value.as_bytes().to_vec()));
    };
    match credential {
        Credential::GithubToken {
            token,
            expires_at,
            server_host,
        } => {
            put("token", token);
            put("expires_at", &expires_at.to_string());
            match format {
                SecretFormat::BasicAuth => {
                    put("username", "x-access-token");
                    put("password", token);
                }
                SecretFormat::GitCredentials => {
                    let line = format!("https://x-access-token:{token}@{server_host}\n");
                    put(".git-credentials", &line);
                }
                _ => {}
            }
        }
        Credential::Aws {
            access_key_id,
            secret_access_key,
            session_token,
            region,
            expires_at,
        } => {
            put("AWS_ACCESS_KEY_ID", access_key_id);
            put("AWS_SECRET_ACCESS_KEY", secret_access_key);
            put("AWS_REGION", region);
            let mut ini = format!(
                "[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret_access_key}\n"
            );
            if let Some(session_token) = session_token {
                put("AWS_SESSION_TOKEN", session_token);
                ini.push_str(&format!("aws_session_token = {session_token}\n"));
            }
            ini.push_str(&format!("region = {region}\n"));
            put("credentials", &ini);
            if let Some(expires_at) = expires_at {
                put("expiration", &expires_at.to_string());
            }
        }
        Credential::DockerLogin {
            registry,
            username,
            password,
            ..
        } => {
            let auth = base64(format!("{username}:{password}").as_bytes());
            let config = serde_json::json!({"auths": {registry: {
                "username": username, "password": password, "auth": auth,
            }}});
            put(".dockerconfigjson", &config.to_string());
        }
        Credential::RegistryToken {
            registry,
            token,
            expires_at,
        } => {
            put("token", token);
            put("expires_at", &expires_at.to_string());
            put("registry", registry);
            if format == SecretFormat::DockerConfigJson {
                let config = serde_json::json!({"auths": {registry: {"registrytoken": token}}});
                put(".dockerconfigjson", &config.to_string());
            }
        }
        Credential::Npm {
            registry_url,
            scope,
            token,
        } => put(
            ".npmrc",
            &npmrc(registry_url, scope.as_deref(), token.as_deref()),
        ),
        Credential::SlackBot { token } => put("SLACK_BOT_TOKEN", token),
        Credential::AzureDevOpsPat { token, server_url } => {
            put("AZURE_DEVOPS_EXT_PAT", token);
            match format {
                SecretFormat::BasicAuth => {
                    put("username", AZURE_DEVOPS_USER);
                    put("password", token);
                }
                SecretFormat::GitCredentials => {
                    let line = git_credential(server_url, AZURE_DEVOPS_USER, token);
                    put(".git-credentials", &line);
                }
                _ => {}
            }
        }
        Credential::OAuth {
            access_token,
            expires_at,
            username,
            server_url,
            variable,
        } => {
            put("access_token", access_token);
            put("expires_at", &expires_at.to_string());
            if let Some(variable) = variable {
                put(variable, access_token);
            }
            match (format, username) {
                (SecretFormat::BasicAuth, Some(user)) => {
                    put("username", user);
                    put("password", access_token);
                }
                (SecretFormat::GitCredentials, Some(user)) => {
                    put(
                        ".git-credentials",
                        &git_credential(server_url, user, access_token),
                    );
                }
                (_, None) => put("authorization", &format!("Bearer {access_token}")),
                _ => {}
            }
        }
        Credential::Perforce {
            port,
            user,
            password,
        } => {
            put("P4PORT", port);
            put("P4USER", user);
            put("P4PASSWD", password);
        }
    }
    Ok(Rendered {
        type_: secret_type(format).to_owned(),
        data,
    })
}

/// The user name git sends with an Azure DevOps personal access token (any non-empty name works).
pub const AZURE_DEVOPS_USER: &str = "pat";

/// An `.npmrc` for `registry_url`: the registry for every package, or for `scope` only (the
/// rest still come from the default registry), and the token for that registry's path.
fn npmrc(registry_url: &str, scope: Option<&str>, token: Option<&str>) -> String {
    let mut text = match scope {
        Some(scope) => format!("{scope}:registry={registry_url}\n"),
        None => format!("registry={registry_url}\n"),
    };
    if let Some(token) = token {
        let path = registry_url
            .split_once("://")
            .map_or(registry_url, |(_, p)| p);
        text.push_str(&format!("//{path}:_authToken={token}\n"));
    }
    text
}

/// A `.git-credentials` line for `user` with `token` on a server or collection URL.
fn git_credential(server_url: &str, user: &str, token: &str) -> String {
    let (scheme, rest) = server_url
        .split_once("://")
        .unwrap_or(("https", server_url));
    let token: String = ::url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    format!("{scheme}://{user}:{token}@{rest}\n")
}

/// Standard base64 (RFC 4648, with padding), for the dockerconfigjson `auth` field.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (chunk.iter().enumerate()).fold(0, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i) & 0x3f) as usize;
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[sextet])
            } else {
                '='
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }
}
