//! Pure checks and derivations for an STS request: the role session name, session tags,
//! the effective duration and the role ARN allow-list.

use sha2::{Digest, Sha256};

use super::super::ProviderError;

/// STS accepts at most this many session tags per AssumeRole.
pub const MAX_SESSION_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;
const MAX_SESSION_NAME: usize = 64;
/// The tag keys patchbay always stamps.
const NAMESPACE_TAG: &str = "patchbay.dev/namespace";
const NAME_TAG: &str = "patchbay.dev/name";
const RESERVED_PREFIX: &str = "patchbay.dev/";

/// Default session lifetime, and the cap when roles are chained.
const ONE_HOUR: i32 = 3600;
const MIN_DURATION: i32 = 900;
const MAX_DURATION: i32 = 43200;

fn short_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text))[..10].to_string()
}

/// A role session name for the VcsAuthToken `namespace/name`: `namespace.name`, valid for STS
/// (`[\w+=,.@-]{2,64}`) and deterministic. Characters STS refuses become `-`; when that
/// happens, or the name is longer than 64 characters, it is cut and ends in `-` and ten hex
/// digits of a hash of the full `namespace/name`, so distinct tokens keep distinct names.
pub fn session_name(namespace: &str, name: &str) -> String {
    let full = format!("{namespace}.{name}");
    let valid = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    let cleaned: String = full
        .chars()
        .map(|c| if valid(c) { c } else { '-' })
        .collect();
    if cleaned == full && (2..=MAX_SESSION_NAME).contains(&cleaned.len()) {
        return cleaned;
    }
    let suffix = short_hash(&format!("{namespace}/{name}"));
    let keep = MAX_SESSION_NAME - suffix.len() - 1;
    let prefix: String = cleaned.chars().take(keep).collect();
    format!("{prefix}-{suffix}")
}

/// Whether `c` is allowed in a session tag key or value: `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
fn tag_char(c: char) -> bool {
    c.is_alphanumeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

fn invalid_tag(message: String) -> ProviderError {
    ProviderError::config("InvalidSessionTags", message)
}

/// The session tags of a token: `patchbay.dev/namespace` and `patchbay.dev/name` first, then
/// the user's tags, all checked against STS's limits (at most 50 tags, keys of 1 to 128 and
/// values of at most 256 characters from `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, keys unique ignoring
/// case). User keys under `patchbay.dev/` are reserved. Errors name the offending key.
pub fn session_tags<'a>(
    namespace: &str,
    name: &str,
    user_tags: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<(String, String)>, ProviderError> {
    let field = "spec.aws.sessionTags";
    let mut tags = vec![
        (NAMESPACE_TAG.to_string(), namespace.to_string()),
        (NAME_TAG.to_string(), name.to_string()),
    ];
    for (key, value) in user_tags {
        if key.to_ascii_lowercase().starts_with(RESERVED_PREFIX) {
            return Err(invalid_tag(format!(
                "{field}: key {key:?} is reserved: patchbay sets {NAMESPACE_TAG} and {NAME_TAG} itself"
            )));
        }
        tags.push((key.clone(), value.clone()));
    }
    if tags.len() > MAX_SESSION_TAGS {
        return Err(invalid_tag(format!(
            "{field}: {} tags, STS allows {} including the 2 patchbay adds",
            tags.len() - 2,
            MAX_SESSION_TAGS - 2
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in &tags {
        let chars = key.chars().count();
        if !(1..=MAX_TAG_KEY).contains(&chars) {
            return Err(invalid_tag(format!(
                "{field}: key {key:?} has {chars} characters, STS allows 1 to {MAX_TAG_KEY}"
            )));
        }
        if let Some(c) = key.chars().find(|c| !tag_char(*c)) {
            return Err(invalid_tag(format!(
                "{field}: key {key:?} contains {c:?}; STS allows letters, digits, spaces and _.:/=+-@"
            )));
        }
        let chars = value.chars().count();
        if chars > MAX_TAG_VALUE {
            return Err(invalid_tag(format!(
                "{field}: the value of key {key:?} has {chars} characters, STS allows at most {MAX_TAG_VALUE}"
            )));
        }
        if let Some(c) = value.chars().find(|c| !tag_char(*c)) {
            return Err(invalid_tag(format!(
                "{field}: the value of key {key:?} contains {c:?}; STS allows letters, digits, spaces and _.:/=+-@"
            )));
        }
        if !seen.insert(key.to_lowercase()) {
            return Err(invalid_tag(format!(
                "{field}: key {key:?} is given twice (STS compares tag keys ignoring case)"
            )));
        }
    }
    Ok(tags)
}

/// The session lifetime, in seconds, to ask STS for: the request (default 3600) clamped to
/// 900 up to the connection's `maxSessionDuration` (default 3600), and at most 3600 when the
/// session is assumed with role credentials (role chaining), which STS caps at one hour.
pub fn effective_duration(requested: Option<i32>, max_session: Option<i32>, chained: bool) -> i32 {
    let mut max = max_session
        .unwrap_or(ONE_HOUR)
        .clamp(MIN_DURATION, MAX_DURATION);
    if chained {
        max = max.min(ONE_HOUR);
    }
    requested.unwrap_or(ONE_HOUR).clamp(MIN_DURATION, max)
}

/// Whether `role_arn` matches one of the connection's `allowedRoleArns` globs. `*` matches any
/// run of characters (`/` included, like IAM's own wildcards), `?` one character; matching is
/// exact otherwise. No globs allow nothing.
pub fn role_allowed(role_arn: &str, allowed_globs: &[String]) -> bool {
    allowed_globs
        .iter()
        .any(|glob| crate::glob::matches(glob, role_arn))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
