//! The one error type every provider returns.

use std::time::Duration;

use crate::conditions::reasons;

/// The longest wait a provider's answer can impose (Retry-After, a rate-limit reset): a hostile
/// or broken server asking for more is waited on this long, never longer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A provider's requested wait, clamped to [`MAX_RETRY_AFTER`].
pub fn clamp_retry_after(wait: Option<Duration>) -> Option<Duration> {
    wait.map(|w| w.min(MAX_RETRY_AFTER))
}

/// Why a provider could not do what was asked: the condition reason, a message that names the
/// field or the provider's answer (never secret material), how long the provider asked to be
/// left alone, and whether only a change by the user can fix it (then the object is also
/// `Stalled` and nothing is retried until it changes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// CamelCase condition reason, one of [`reasons`] or a provider's own (e.g. `AccessDenied`).
    pub reason: &'static str,
    /// Human-readable message naming the field or the provider's answer.
    pub message: String,
    /// How long the provider asked to wait before the next call, if it did.
    pub retry_after: Option<Duration>,
    /// Only a change by the user can fix it.
    pub permanent: bool,
}

impl ProviderError {
    /// A configuration problem the user must fix: permanent, no retry.
    pub fn config(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            retry_after: None,
            permanent: true,
        }
    }

    /// A failure worth retrying with backoff (the provider, the network, the Kubernetes API).
    pub fn transient(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            retry_after: None,
            permanent: false,
        }
    }

    /// Something this release of patchbay cannot do yet: neither the user's mistake nor worth
    /// a retry before the next periodic check.
    pub fn not_available(message: impl Into<String>) -> Self {
        Self {
            reason: reasons::MINTING_NOT_AVAILABLE,
            message: message.into(),
            retry_after: None,
            permanent: false,
        }
    }

    /// The same error with `context` put in front of its message.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}
