//! "Rotate key": on the `patchbay.dev/rotate-key-requested-at` annotation, the connection's
//! provider creates a new key (for aws/ecr accessKeys connections, a new IAM access key), which
//! patchbay writes into the referenced Secret (only when that Secret carries the label
//! `patchbay.dev/allow-key-rotation: "true"`); the old key stays for `oldKeyRetention`
//! (default 24 h) and is then deleted. For AWS this needs `iam:GetUser`, `iam:ListAccessKeys`,
//! `iam:CreateAccessKey` and `iam:DeleteAccessKey` on the user.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::Api;
use tracing::{info, warn};

use super::context::Context;
use super::error::within;
use super::secrets;
use super::status;
use crate::api::connection::{AccessKeys, KeyRotationStatus};
use crate::api::{Connection, ConnectionStatus};
use crate::providers::{self, Provider, SecretValues};
use crate::telemetry::Call;

/// The Connection annotation that asks for a rotation (any new value).
pub const ROTATE_REQUESTED_AT: &str = "patchbay.dev/rotate-key-requested-at";
/// The Secret label that allows patchbay to write new keys into a Secret.
pub const ALLOW_ROTATION_LABEL: &str = "patchbay.dev/allow-key-rotation";
/// How long the previous key stays active by default (TeamCity's 24 hours).
pub const DEFAULT_RETENTION: SignedDuration = SignedDuration::from_hours(24);

/// The longest a rotation step may take at the provider.
const ROTATION_DEADLINE: Duration = Duration::from_secs(60);

/// When to try again after the rotation record could not be read.
const FRESH_READ_RETRY: Duration = Duration::from_secs(10);

/// The key-rotation record as the API server holds it now. The cached Connection that woke this
/// reconcile can predate patchbay's own last status write (the Secret it just wrote back raises
/// an event that can overtake the status event), and acting on a stale record would rotate a
/// second time or forget the pending deletion of the previous key. Read only when a rotation
/// step is about to run.
async fn fresh_record(
    ctx: &Context,
    conn: &Connection,
) -> Result<Option<KeyRotationStatus>, kube::Error> {
    let api: Api<Connection> =
        Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default());
    let fresh = api.get(&conn.name_any()).await?;
    Ok(fresh.status.and_then(|s| s.key_rotation))
}

/// Whether a new rotation was asked for: an annotation value not yet honoured.
pub fn rotation_requested<'a>(
    requested: Option<&'a str>,
    status: Option<&KeyRotationStatus>,
) -> Option<&'a str> {
    let requested = requested.filter(|r| !r.trim().is_empty())?;
    (status.and_then(|s| s.requested.as_deref()) != Some(requested)).then_some(requested)
}

/// When the previous key is due for deletion and has not been deleted yet.
pub fn deletion_due(
    status: Option<&KeyRotationStatus>,
    now: Timestamp,
) -> Option<(String, Timestamp)> {
    let s = status?;
    if s.previous_deleted_at.is_some() {
        return None;
    }
    let at = s.delete_previous_at.as_ref()?.0;
    let id = s.previous_access_key_id.clone()?;
    Some((id, at)).filter(|(_, at)| *at <= now)
}

/// The retention of the previous key.
pub fn retention(keys: &AccessKeys) -> SignedDuration {
    keys.old_key_retention
        .as_deref()
        .and_then(|d| crate::renewal::parse_go_duration(d).ok())
        .unwrap_or(DEFAULT_RETENTION)
}

/// Runs whatever rotation step is due for an accessKeys connection, recording it in `status`;
/// returns when to look again (the previous key's deletion), if anything is pending.
pub async fn reconcile(
    ctx: &Context,
    conn: &Connection,
    status: &mut ConnectionStatus,
    secrets: &SecretValues,
) -> Option<Duration> {
    let keys = conn.spec.aws_credentials()?.access_keys.as_ref()?;
    let provider = providers::for_spec(&conn.spec).ok()?;
    let now = Timestamp::now();
    let requested = conn
        .annotations()
        .get(ROTATE_REQUESTED_AT)
        .map(String::as_str);
    if rotation_requested(requested, status.key_rotation.as_ref()).is_some()
        || deletion_due(status.key_rotation.as_ref(), now).is_some()
    {
        match fresh_record(ctx, conn).await {
            Ok(record) => status.key_rotation = record,
            Err(e) => {
                warn!(error = %e, "cannot read the connection's rotation record; retrying");
                return Some(FRESH_READ_RETRY);
            }
        }
    }
    let unfinished = status
        .key_rotation
        .as_ref()
        .and_then(|r| r.in_progress.clone());
    if let Some(unfinished) = unfinished {
        recover(provider, conn, keys, secrets, status, &unfinished, now).await;
    }
    if let Some(request) = rotation_requested(requested, status.key_rotation.as_ref()) {
        let step = Step {
            ctx,
            conn,
            provider,
            keys,
            secrets,
        };
        if let Err(wait) = step.rotate_on_record(status, request, now).await {
            return wait;
        }
    }
    if let Some((previous, _)) = deletion_due(status.key_rotation.as_ref(), now) {
        let record = status.key_rotation.get_or_insert_with(Default::default);
        let call = provider.delete_key(conn, secrets, &previous);
        let what = (provider.kind(), Call::DeleteKey);
        record.message = Some(
            match ctx
                .call(what, ROTATION_DEADLINE, "deleting the key", call)
                .await
            {
                Ok(()) => {
                    record.previous_deleted_at = Some(Time(now));
                    format!("the previous key {previous} was deleted")
                }
                Err(e) => format!("could not delete the previous key {previous}: {e}"),
            },
        );
    }
    pending(status.key_rotation.as_ref()?, now)
}

/// One rotation, and what it works with.
struct Step<'a> {
    ctx: &'a Context,
    conn: &'a Connection,
    provider: &'a dyn Provider,
    keys: &'a AccessKeys,
    secrets: &'a SecretValues,
}

impl Step<'_> {
    /// Records the intent (before any key exists), rotates, and records the outcome. `Err`
    /// holds when to look again if the intent could not be recorded.
    async fn rotate_on_record(
        &self,
        status: &mut ConnectionStatus,
        request: &str,
        now: Timestamp,
    ) -> Result<(), Option<Duration>> {
        let (ctx, conn, keys) = (self.ctx, self.conn, self.keys);
        let mut record = status.key_rotation.clone().unwrap_or_default();
        record.in_progress = Some(request.to_string());
        record.previous_access_key_id = signing_key(keys, self.secrets);
        (
            record.rotated_at,
            record.delete_previous_at,
            record.previous_deleted_at,
        ) = (None, None, None);
        status.key_rotation = Some(record.clone());
        if let Err(e) = status::apply_connection(ctx, conn, status).await {
            warn!(error = %e, "cannot record the rotation before it starts; retrying");
            return Err(Some(FRESH_READ_RETRY));
        }
        let outcome = rotate(ctx, conn, self.provider, keys, self.secrets).await;
        record.in_progress = None;
        record.requested = Some(request.to_string());
        match outcome {
            Ok(previous) => {
                let delete_at = now.checked_add(retention(keys)).unwrap_or(now);
                info!(previous = %previous, "rotated the access key");
                record.rotated_at = Some(Time(now));
                record.previous_access_key_id = Some(previous.clone());
                record.delete_previous_at = Some(Time(delete_at));
                record.message = Some(format!(
                    "rotated: the new key is in the Secret; {previous} stays active until {delete_at}"
                ));
            }
            Err(message) => {
                warn!(%message, "key rotation failed");
                record.message = Some(format!("rotation failed: {message}"));
            }
        }
        status.key_rotation = Some(record);
        Ok(())
    }
}

/// The id of the key the connection signs with now.
fn signing_key(keys: &AccessKeys, secrets: &SecretValues) -> Option<String> {
    let field = "spec.aws.credentials.accessKeys.accessKeyId";
    let id = secrets.text(field, &keys.access_key_id).ok()?;
    Some(id.trim().to_string())
}

/// What became of a rotation an earlier operator stopped half-way.
#[derive(Debug, PartialEq, Eq)]
pub enum Interrupted {
    /// The new key reached the Secret: the rotation is finished as if it had not stopped.
    Written,
    /// The new key never reached the Secret: a key created then is lost and must go.
    Lost,
}

/// Whether the rotation that began with `previous` as the signing key got its new key written.
pub fn interrupted(previous: Option<&str>, signing: Option<&str>) -> Interrupted {
    match (previous, signing) {
        (Some(previous), Some(signing)) if previous != signing => Interrupted::Written,
        _ => Interrupted::Lost,
    }
}

/// Finishes, or cleans up after, the rotation `pending` that an earlier operator began.
async fn recover(
    provider: &dyn Provider,
    conn: &Connection,
    keys: &AccessKeys,
    secrets: &SecretValues,
    status: &mut ConnectionStatus,
    pending: &str,
    now: Timestamp,
) {
    let record = status.key_rotation.get_or_insert_with(Default::default);
    record.in_progress = None;
    record.requested = Some(pending.to_string());
    let signing = signing_key(keys, secrets);
    match interrupted(record.previous_access_key_id.as_deref(), signing.as_deref()) {
        Interrupted::Written => {
            let delete_at = now.checked_add(retention(keys)).unwrap_or(now);
            let previous = record.previous_access_key_id.clone().unwrap_or_default();
            record.rotated_at = Some(Time(now));
            record.delete_previous_at = Some(Time(delete_at));
            record.message = Some(format!(
                "rotated (finished after a restart): {previous} stays active until {delete_at}"
            ));
        }
        Interrupted::Lost => {
            record.previous_access_key_id = None;
            let call = provider.other_keys(conn, secrets);
            let lost =
                (within(ROTATION_DEADLINE, "listing the keys", call).await).unwrap_or_default();
            for id in &lost {
                let call = provider.delete_key(conn, secrets, id);
                let _ = within(ROTATION_DEADLINE, "deleting the key", call).await;
            }
            record.message = Some(format!(
                "rotation was interrupted before the new key was written; deleted the unwritten key(s) {lost:?}; annotate again to rotate"
            ));
        }
    }
}

/// How long until the previous key's deletion, if it is still to come.
fn pending(record: &KeyRotationStatus, now: Timestamp) -> Option<Duration> {
    if record.previous_deleted_at.is_some() {
        return None;
    }
    let at = record.delete_previous_at.as_ref()?.0;
    let wait = at.duration_since(now).max(SignedDuration::from_secs(1));
    Duration::try_from(wait).ok()
}

/// Checks that patchbay may write the key Secrets, has the provider create the new key, and
/// writes it into them; returns the replaced key's ID.
async fn rotate(
    ctx: &Context,
    conn: &Connection,
    provider: &dyn Provider,
    keys: &AccessKeys,
    secrets: &SecretValues,
) -> Result<String, String> {
    let namespace = conn.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    if keys.access_key_id.name != keys.secret_access_key.name {
        return Err(
            "accessKeyId and secretAccessKey must be in one Secret to rotate, so that both change in one write"
                .into(),
        );
    }
    // One Secret holds both halves of the key (checked above).
    let name = &keys.access_key_id.name;
    let secret =
        (api.get(name).await).map_err(|e| format!("cannot read Secret {namespace}/{name}: {e}"))?;
    if (secret.labels().get(ALLOW_ROTATION_LABEL)).is_none_or(|v| v != "true") {
        return Err(format!(
            "Secret {namespace}/{name} does not carry the label {ALLOW_ROTATION_LABEL}: \"true\", so patchbay may not write new keys into it"
        ));
    }
    let call = provider.rotate_key(conn, secrets);
    let what = (provider.kind(), Call::RotateKey);
    let rotated = (ctx
        .call(what, ROTATION_DEADLINE, "creating the key", call)
        .await)
        .map_err(|e| e.to_string())?;
    // The new secret exists only in that answer: write it before anything else can fail, and
    // only into the key Secrets, still labelled.
    let still_allowed = |secret: &Secret| {
        if secret.namespace().as_deref() != Some(namespace.as_str()) || secret.name_any() != *name {
            let other = secret.name_any();
            return Err(format!("Secret {other} is not the connection's key Secret"));
        }
        let labelled = (secret.labels().get(ALLOW_ROTATION_LABEL)).is_some_and(|v| v == "true");
        labelled.then_some(()).ok_or_else(|| {
            format!("Secret {namespace}/{name} lost the label {ALLOW_ROTATION_LABEL}")
        })
    };
    secrets::write(ctx, &rotated.writes, still_allowed)
        .await
        .map_err(|e| {
            format!("created a new key but could not write it into the connection's Secret: {e}")
        })?;
    Ok(rotated.previous_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn a_new_annotation_value_asks_for_one_rotation() {
        assert_eq!(rotation_requested(Some("1"), None), Some("1"));
        let done = KeyRotationStatus {
            requested: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(rotation_requested(Some("1"), Some(&done)), None);
        assert_eq!(rotation_requested(Some("2"), Some(&done)), Some("2"));
        assert_eq!(rotation_requested(Some(" "), None), None);
        assert_eq!(rotation_requested(None, Some(&done)), None);
    }

    #[test]
    fn the_previous_key_is_deleted_once_its_retention_has_passed() {
        let pending = KeyRotationStatus {
            previous_access_key_id: Some("AKIAOLD".into()),
            delete_previous_at: Some(Time(at(100))),
            ..Default::default()
        };
        assert_eq!(deletion_due(Some(&pending), at(99)), None);
        assert_eq!(
            deletion_due(Some(&pending), at(100)),
            Some(("AKIAOLD".into(), at(100)))
        );
        let deleted = KeyRotationStatus {
            previous_deleted_at: Some(Time(at(101))),
            ..pending
        };
        assert_eq!(deletion_due(Some(&deleted), at(200)), None);
    }

    #[test]
    fn an_interrupted_rotation_is_finished_only_if_the_new_key_reached_the_secret() {
        assert_eq!(
            interrupted(Some("AKIAOLD"), Some("AKIANEW")),
            Interrupted::Written
        );
        assert_eq!(
            interrupted(Some("AKIAOLD"), Some("AKIAOLD")),
            Interrupted::Lost
        );
        assert_eq!(interrupted(None, Some("AKIANEW")), Interrupted::Lost);
    }

    #[test]
    fn retention_defaults_to_a_day() {
        let keys: AccessKeys = serde_json::from_value(serde_json::json!({
            "accessKeyId": {"name": "k", "key": "id"}, "secretAccessKey": {"name": "k", "key": "s"},
        }))
        .unwrap();
        assert_eq!(retention(&keys), SignedDuration::from_hours(24));
        let short = AccessKeys {
            old_key_retention: Some("10s".into()),
            ..keys
        };
        assert_eq!(retention(&short), SignedDuration::from_secs(10));
    }
}
