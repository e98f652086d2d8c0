//! The one place that reads Secrets for providers and writes back what they return.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};

use std::time::{Duration, Instant};

use super::context::Context;
use super::error::Error;
use super::secret_cache::{Kept, Lookup};
use crate::conditions::reasons;
use crate::providers::{CaBundle, ProviderError, SecretRead, SecretValues, SecretWrite};

fn data_of(secret: Secret) -> BTreeMap<String, Vec<u8>> {
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0));
    let text =
        (secret.string_data.unwrap_or_default().into_iter()).map(|(k, v)| (k, v.into_bytes()));
    data.chain(text).collect()
}

/// A digest of a Secret's data: keys and values, in key order.
fn digest(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value);
    }
    hex::encode(hasher.finalize())
}

/// Reads the Secrets `reads` names into `values` (each Secret once; an absent one stays
/// absent) and returns a digest of each read's data, in order (`absent` for an absent
/// Secret). The digest covers the data only: a label or annotation changes nothing.
pub async fn read(
    ctx: &Context,
    reads: &[SecretRead],
    values: &mut SecretValues,
) -> Result<Vec<String>, Error> {
    read_from(ctx, reads, values, false).await
}

/// [`read`], answered from the Secrets kept in memory where the Secret watch says they are
/// current ([`super::secret_cache`]); what is read is kept for next time.
pub async fn read_kept(
    ctx: &Context,
    reads: &[SecretRead],
    values: &mut SecretValues,
) -> Result<Vec<String>, Error> {
    read_from(ctx, reads, values, true).await
}

async fn read_from(
    ctx: &Context,
    reads: &[SecretRead],
    values: &mut SecretValues,
    kept: bool,
) -> Result<Vec<String>, Error> {
    let mut versions: BTreeMap<&SecretRead, String> = BTreeMap::new();
    for read in reads {
        if versions.contains_key(read) {
            continue;
        }
        let found = match kept {
            true => fetch_kept(ctx, read).await?,
            false => fetch(ctx, read).await?.map(|(_, k)| k),
        };
        let version = match found {
            Some(Kept { data, digest }) => {
                values.insert_in(&read.namespace, &read.name, data);
                digest
            }
            None => "absent".to_string(),
        };
        versions.insert(read, version);
    }
    Ok(reads.iter().map(|r| versions[r].clone()).collect())
}

/// Secret `read` from the API server: its resourceVersion and data; `None` when absent.
async fn fetch(ctx: &Context, read: &SecretRead) -> Result<Option<(String, Kept)>, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &read.namespace);
    let object = format!("{}/{}", read.namespace, read.name);
    let found =
        (api.get_opt(&read.name).await).map_err(|e| Error::kube("read Secret", &object, e))?;
    Ok(found.map(|secret| {
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        let data = data_of(secret);
        let digest = digest(&data);
        (version, Kept { data, digest })
    }))
}

/// The longest a read waits for another read of the same Secret before it reads itself.
const READ_WAIT: Duration = Duration::from_secs(5);

/// Secret `read` from memory when kept and current, else from the API server (and kept). While
/// another read of it is on its way, waits for that one's answer first (and for the next one's,
/// when that answer could not be kept), at most [`READ_WAIT`] in all.
async fn fetch_kept(ctx: &Context, read: &SecretRead) -> Result<Option<Kept>, Error> {
    let (namespace, name) = (&read.namespace, &read.name);
    let deadline = tokio::time::Instant::now() + READ_WAIT;
    let started = loop {
        match ctx.secret_cache.lookup(namespace, name, Instant::now()) {
            Lookup::Hit(kept) => return Ok(Some(kept)),
            Lookup::Wait(mut done) if tokio::time::Instant::now() < deadline => {
                let _ = tokio::time::timeout_at(deadline, done.changed()).await;
            }
            Lookup::Wait(_) => break false,
            Lookup::Miss => break true,
        }
    };
    let mut reading = Reading {
        cache: &ctx.secret_cache,
        namespace,
        name,
        armed: started,
    };
    let found = fetch(ctx, read).await;
    let answer = found.as_ref().ok().and_then(Option::as_ref);
    let version = answer.map(|(v, k)| (v.as_str(), k));
    reading.armed = false;
    ctx.secret_cache
        .store(namespace, name, version, Instant::now());
    Ok(found?.map(|(_, kept)| kept))
}

/// A read of a Secret this reconcile started: if the reconcile is dropped before the answer is
/// stored (cancelled at shutdown), the read is given up, which wakes those waiting for it.
struct Reading<'a> {
    cache: &'a super::secret_cache::SecretCache,
    namespace: &'a str,
    name: &'a str,
    armed: bool,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if self.armed {
            (self.cache).store(self.namespace, self.name, None, Instant::now());
        }
    }
}

/// How often a write-back is tried again after the API server answered 409 Conflict (the
/// Secret changed between our read and our write).
const WRITE_ATTEMPTS: usize = 5;

/// Writes provider values into existing Secrets. Each target is read, must pass `allowed`
/// (say, it carries the rotation opt-in label, or it is one the provider was given to read),
/// and is replaced at the resourceVersion it was just read at, so a change in between (the
/// label removed, a concurrent write) fails the write instead of being overwritten; on such a
/// conflict the Secret is read again and the write tried again, a few times. A write whose
/// [`SecretWrite::replaces`] no longer matches the key's value is dropped: a newer value wins.
/// Returns the `namespace/name` of the Secrets whose writes were dropped that way.
pub async fn write(
    ctx: &Context,
    writes: &[SecretWrite],
    allowed: impl Fn(&Secret) -> Result<(), String>,
) -> Result<Vec<String>, ProviderError> {
    let mut by_secret: BTreeMap<(&str, &str), Vec<&SecretWrite>> = BTreeMap::new();
    for w in writes {
        by_secret
            .entry((&w.namespace, &w.name))
            .or_default()
            .push(w);
    }
    let mut superseded = Vec::new();
    for ((namespace, name), writes) in by_secret {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
        let object = format!("{namespace}/{name}");
        let kube = |action, e| ProviderError::from(Error::kube(action, &object, e));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut secret = api.get(name).await.map_err(|e| kube("read Secret", e))?;
            allowed(&secret)
                .map_err(|why| ProviderError::config(reasons::SECRET_WRITE_REFUSED, why))?;
            let data = secret.data.get_or_insert_with(BTreeMap::new);
            let stale = (writes.iter()).any(|w| {
                w.replaces
                    .as_ref()
                    .is_some_and(|old| data.get(&w.key).map(|v| &v.0) != Some(old))
            });
            if stale {
                superseded.push(object.clone());
                break;
            }
            for w in &writes {
                match w.value.is_empty() {
                    true => data.remove(&w.key),
                    false => data.insert(w.key.clone(), ByteString(w.value.clone())),
                };
            }
            let replaced = api.replace(name, &PostParams::default(), &secret).await;
            // Whatever the outcome, the copy kept in memory may be out of date now.
            ctx.secret_cache.forget(namespace, name);
            match replaced {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < WRITE_ATTEMPTS => {
                    continue;
                }
                Err(e) => return Err(kube("write Secret", e)),
            }
        }
    }
    Ok(superseded)
}

/// The connection's `spec.caBundle`, read from its ConfigMap or Secret (in the connection's
/// namespace) and checked; `None` when the connection names none. Failures are transient:
/// the ConfigMap may appear or be fixed, and is read again on the next attempt.
pub async fn ca_bundle(
    ctx: &Context,
    conn: &crate::api::Connection,
) -> Result<Option<CaBundle>, ProviderError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let Some(reference) = &conn.spec.ca_bundle else {
        return Ok(None);
    };
    let namespace = kube::ResourceExt::namespace(conn).unwrap_or_default();
    let invalid = |message: String| ProviderError::transient(reasons::INVALID_CA_BUNDLE, message);
    let (source, pem) = match (&reference.config_map, &reference.secret) {
        (Some(r), _) => {
            let source = format!(
                "spec.caBundle.configMap (ConfigMap {:?} key {:?})",
                r.name, r.key
            );
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
            let found = (api.get_opt(&r.name).await)
                .map_err(|e| invalid(format!("{source}: cannot read it: {e}")))?
                .ok_or_else(|| invalid(format!("{source}: no such ConfigMap")))?;
            let text = found
                .data
                .and_then(|d| d.get(&r.key).map(|v| v.as_bytes().to_vec()));
            let binary = found
                .binary_data
                .and_then(|d| d.get(&r.key).map(|v| v.0.clone()));
            let pem = text
                .or(binary)
                .ok_or_else(|| invalid(format!("{source}: no such key")))?;
            (source, pem)
        }
        (None, Some(r)) => {
            let source = format!("spec.caBundle.secret ({r})");
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
            let found = (api.get_opt(&r.name).await)
                .map_err(|e| invalid(format!("{source}: cannot read it: {e}")))?
                .ok_or_else(|| invalid(format!("{source}: no such Secret")))?;
            let pem = (found.data.and_then(|d| d.get(&r.key).map(|v| v.0.clone())))
                .ok_or_else(|| invalid(format!("{source}: no such key")))?;
            (source, pem)
        }
        (None, None) => return Ok(None),
    };
    CaBundle::parse(&pem, &source).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        (entries.iter())
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_digest_follows_the_data_and_nothing_else() {
        let key = digest(&data(&[("id", "AKIA1"), ("secret", "s")]));
        assert_eq!(key, digest(&data(&[("secret", "s"), ("id", "AKIA1")])));
        assert_ne!(key, digest(&data(&[("id", "AKIA2"), ("secret", "s")])));
        assert_ne!(
            digest(&data(&[("ab", "c")])),
            digest(&data(&[("a", "bc")])),
            "keys and values cannot run into each other"
        );
    }
}
