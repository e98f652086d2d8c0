//! Setting status conditions the way `meta.SetStatusCondition` does: the transition time moves
//! only when the status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Condition, ConditionStatus};

/// The condition types patchbay sets.
pub mod types {
    /// The object's configuration is valid and its credential (if any) is usable.
    pub const READY: &str = "Ready";
    /// A live check against the provider succeeded.
    pub const VERIFIED: &str = "Verified";
    /// kstatus: the controller is working towards the desired state.
    pub const RECONCILING: &str = "Reconciling";
    /// kstatus: the controller cannot make progress without a change from the user.
    pub const STALLED: &str = "Stalled";
}

/// The condition reasons patchbay's own code sets and compares; providers add the reasons of
/// their services' answers (e.g. `GithubRateLimited`, `AccessDenied`), and renewal's reasons
/// are [`crate::renewal::Reason`].
pub mod reasons {
    /// Connection Ready: every check passed.
    pub const VALID: &str = "Valid";
    /// Connection Verified: the live check passed.
    pub const VERIFIED: &str = "Verified";
    /// Connection Verified: no live check has run yet.
    pub const NOT_CHECKED: &str = "NotChecked";
    /// Connection Verified: patchbay has no live check for this kind yet.
    pub const VERIFICATION_NOT_AVAILABLE: &str = "VerificationNotAvailable";
    /// Token Ready: a usable credential is in the Secret.
    pub const TOKEN_VALID: &str = "TokenValid";
    /// Token Ready (True): renewal failed, the current credential is still valid.
    pub const RENEWAL_FAILING: &str = "RenewalFailing";
    /// Token Ready: the credential expired and renewal failed.
    pub const EXPIRED: &str = "Expired";
    /// Token Ready: this release does not mint from the connection's kind.
    pub const MINTING_NOT_AVAILABLE: &str = "MintingNotAvailable";
    /// Token Ready: the connection is not Ready (for its current generation).
    pub const CONNECTION_NOT_READY: &str = "ConnectionNotReady";
    /// Token Ready: the namespace tree is broken (a cycle, a missing parent).
    pub const INVALID_HIERARCHY: &str = "InvalidHierarchy";
    /// Token Ready: no connection of that name up the tree (or it vanished).
    pub const CONNECTION_NOT_FOUND: &str = "ConnectionNotFound";
    /// Token Ready: the connection does not serve this token (e.g. reserved for sources).
    pub const CONNECTION_NOT_AVAILABLE: &str = "ConnectionNotAvailable";
    /// Token Ready: the token's request block does not fit the connection's kind.
    pub const CONNECTION_KIND_MISMATCH: &str = "ConnectionKindMismatch";
    /// Token Ready: a Secret of the output's name exists and is not patchbay's.
    pub const SECRET_CONFLICT: &str = "SecretConflict";
    /// Token Ready: the credential cannot be laid out in the requested format.
    pub const INVALID_SECRET_FORMAT: &str = "InvalidSecretFormat";
    /// A referenced Secret does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// A referenced Secret lacks the key.
    pub const SECRET_KEY_NOT_FOUND: &str = "SecretKeyNotFound";
    /// A referenced Secret value is not UTF-8 text.
    pub const INVALID_SECRET_VALUE: &str = "InvalidSecretValue";
    /// The spec is invalid in a way the schema cannot express.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// patchbay refused to write a provider's value into a Secret it may not write.
    pub const SECRET_WRITE_REFUSED: &str = "SecretWriteRefused";
    /// Token Ready: the token lost the right to its credential, which was revoked (where the
    /// provider can) and its Secret deleted; the message names the refusal.
    pub const WITHDRAWN: &str = "Withdrawn";
    /// Token Ready: the token would receive long-lived material outside the connection's
    /// namespace, and the connection does not allow copies.
    pub const COPY_NOT_ALLOWED: &str = "CopyNotAllowed";
    /// A provider did not finish within patchbay's deadline.
    pub const PROVIDER_TIMEOUT: &str = "ProviderTimeout";
    /// A call to the Kubernetes API failed.
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    /// A provider answered with something patchbay cannot use.
    pub const INVALID_RESPONSE: &str = "InvalidResponse";
    /// A server's TLS certificate is not signed by a CA patchbay trusts; the message says
    /// where to add the CA (`spec.caBundle`, `--extra-ca-bundle`).
    pub const CERTIFICATE_NOT_TRUSTED: &str = "CertificateNotTrusted";
    /// Connection Ready: a server the connection names is outside the operator's
    /// `--allowed-endpoints`.
    pub const ENDPOINT_NOT_ALLOWED: &str = "EndpointNotAllowed";
    /// `spec.caBundle` (or the operator's `--extra-ca-bundle`) holds no usable PEM certificate.
    pub const INVALID_CA_BUNDLE: &str = "InvalidCaBundle";
}

/// One condition to set, without its bookkeeping fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<'a> {
    /// Condition type.
    pub type_: &'a str,
    /// Condition status.
    pub status: ConditionStatus,
    /// CamelCase reason.
    pub reason: &'a str,
    /// Message; never secret material.
    pub message: String,
}

/// Sets a condition: updates it in place (keeping its transition time unless the status
/// changes) or appends it. Returns whether the status changed (a transition).
pub fn set(
    conditions: &mut Vec<Condition>,
    desired: Desired<'_>,
    generation: Option<i64>,
    now: &Time,
) -> bool {
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        let transition = existing.status != desired.status;
        if transition {
            existing.last_transition_time = now.clone();
        }
        existing.status = desired.status;
        existing.reason = desired.reason.to_string();
        existing.message = desired.message;
        existing.observed_generation = generation;
        return transition;
    }
    conditions.push(Condition {
        type_: desired.type_.to_string(),
        status: desired.status,
        reason: desired.reason.to_string(),
        message: desired.message,
        last_transition_time: now.clone(),
        observed_generation: generation,
    });
    true
}

/// Sets kstatus `Stalled` to True with the problem's reason and message, or removes it when there
/// is no problem only the user can fix.
pub fn set_stalled(
    conditions: &mut Vec<Condition>,
    problem: Option<(&str, &str)>,
    generation: Option<i64>,
    now: &Time,
) {
    match problem {
        Some((reason, message)) => {
            let desired = Desired {
                type_: types::STALLED,
                status: ConditionStatus::True,
                reason,
                message: message.to_string(),
            };
            set(conditions, desired, generation, now);
        }
        None => remove(conditions, types::STALLED),
    }
}

/// Removes the condition of `type_`, if present.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: ConditionStatus, reason: &str) -> Desired<'_> {
        Desired {
            type_: types::READY,
            status,
            reason,
            message: format!("{reason} happened"),
        }
    }

    #[test]
    fn a_new_condition_is_appended_as_a_transition() {
        let mut cs = Vec::new();
        assert!(set(
            &mut cs,
            ready(ConditionStatus::True, "Valid"),
            Some(1),
            &at(10)
        ));
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].last_transition_time, at(10));
    }

    #[test]
    fn the_transition_time_stays_while_the_status_stays() {
        let mut cs = Vec::new();
        set(
            &mut cs,
            ready(ConditionStatus::False, "SecretNotFound"),
            Some(1),
            &at(10),
        );
        let changed = set(
            &mut cs,
            ready(ConditionStatus::False, "SecretKeyNotFound"),
            Some(2),
            &at(20),
        );
        assert!(!changed);
        assert_eq!(cs[0].last_transition_time, at(10));
        assert_eq!(cs[0].reason, "SecretKeyNotFound");
        assert_eq!(cs[0].observed_generation, Some(2));
    }

    #[test]
    fn a_status_change_moves_the_transition_time() {
        let mut cs = Vec::new();
        set(
            &mut cs,
            ready(ConditionStatus::False, "SecretNotFound"),
            Some(1),
            &at(10),
        );
        assert!(set(
            &mut cs,
            ready(ConditionStatus::True, "Valid"),
            Some(1),
            &at(30)
        ));
        assert_eq!(cs[0].last_transition_time, at(30));
    }

    #[test]
    fn removing_drops_only_that_type() {
        let mut cs = Vec::new();
        set(&mut cs, ready(ConditionStatus::True, "Valid"), None, &at(1));
        set(
            &mut cs,
            Desired {
                type_: types::STALLED,
                ..ready(ConditionStatus::True, "X")
            },
            None,
            &at(1),
        );
        remove(&mut cs, types::STALLED);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].type_, "Ready");
    }
}
