//! Google OAuth clients.

use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

pub(super) struct GoogleProvider;

impl Provider for GoogleProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::Google
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let google = block(&spec.google, "google")?;
        Ok(Validated {
            summary: format!("Google OAuth client {}", google.client_id),
        })
    }
}
