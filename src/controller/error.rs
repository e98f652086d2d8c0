//! Why a reconcile failed in a way worth retrying.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use kube::runtime::controller::Action;

use crate::conditions::reasons;
use crate::providers::ProviderError;

/// A reconcile that failed for a reason worth retrying (the API server, a provider).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("cannot {action} {object}: {message}")]
    Kube {
        /// What patchbay tried to do.
        action: &'static str,
        /// Which object.
        object: String,
        /// The API error.
        message: String,
        /// The API server answered 409 Conflict: the object changed since it was read.
        conflict: bool,
    },
    /// The reconcile panicked. The panic is contained: the object is retried with backoff and
    /// every other object goes on being served.
    #[error("reconcile of {object} panicked: {message}")]
    Panicked {
        /// Which object.
        object: String,
        /// The panic's message.
        message: String,
    },
    /// Adding or removing the finalizer failed, or the work behind it did.
    #[error("finalizer of {object}: {message}")]
    Finalizer {
        /// Which object.
        object: String,
        /// What went wrong.
        message: String,
        /// It went wrong on a 409 Conflict.
        conflict: bool,
    },
}

/// A reconcile that failed in any way: worth retrying with backoff, never a reason to stop the
/// process.
impl Error {
    /// A failed Kubernetes call: `action` on `object`.
    pub fn kube(action: &'static str, object: &str, e: kube::Error) -> Self {
        Self::Kube {
            action,
            object: object.to_string(),
            conflict: is_conflict(&e),
            message: e.to_string(),
        }
    }

    /// Whether the failure was a 409 Conflict (an object changed between read and write): an
    /// ordinary race, retried soon instead of backed off.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Kube { conflict, .. } | Self::Finalizer { conflict, .. } => *conflict,
            Self::Panicked { .. } => false,
        }
    }
}

impl From<Error> for ProviderError {
    /// A Kubernetes failure met while serving a provider: reported like a transient provider
    /// failure (the credential in place stays, the call is retried with backoff).
    fn from(e: Error) -> Self {
        ProviderError::transient(crate::conditions::reasons::KUBERNETES_ERROR, e.to_string())
    }
}

/// Whether a Kubernetes API error is a 409 Conflict.
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

/// Runs a reconcile of `object`; a panic inside becomes [`Error::Panicked`] instead of
/// unwinding through the controller and stopping the process.
pub async fn contained(
    object: String,
    reconcile: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    match AssertUnwindSafe(reconcile).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let message = (panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(Error::Panicked { object, message })
        }
    }
}

/// `call`, or a transient `ProviderTimeout` once `deadline` has passed.
pub async fn within<T>(
    deadline: Duration,
    what: &str,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::transient(
            reasons::PROVIDER_TIMEOUT,
            format!("{what} did not finish within {} s", deadline.as_secs()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_reconcile_becomes_an_error_for_its_object() {
        let reconcile = async { panic!("provider answer out of range") };
        match contained("VcsAuthToken ci/t".into(), reconcile).await {
            Err(Error::Panicked { object, message }) => {
                assert_eq!(object, "VcsAuthToken ci/t");
                assert_eq!(message, "provider answer out of range");
            }
            other => panic!("expected a contained panic, got {other:?}"),
        }
    }
}
