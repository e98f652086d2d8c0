//! Perforce Helix Core administrator logins.

use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

pub(super) struct PerforceAdminProvider;

impl Provider for PerforceAdminProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::PerforceAdmin
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let p4 = block(&spec.perforce_admin, "perforceAdmin")?;
        Ok(Validated {
            summary: format!("Perforce {} as {}", p4.host, p4.user),
        })
    }
}
