//! Why a reconcile failed in a way worth retrying.

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
    },
    /// Adding or removing the finalizer failed, or the work behind it did.
    #[error("finalizer of {object}: {message}")]
    Finalizer {
        /// Which object.
        object: String,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// A failed Kubernetes call: `action` on `object`.
    pub fn kube(action: &'static str, object: &str, e: kube::Error) -> Self {
        Self::Kube {
            action,
            object: object.to_string(),
            message: e.to_string(),
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
