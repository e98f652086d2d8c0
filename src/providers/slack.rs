//! Slack apps.

use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::{ConnectionKind, ConnectionSpec};

pub(super) struct SlackProvider;

impl Provider for SlackProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::Slack
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let slack = block(&spec.slack, "slack")?;
        Ok(Validated {
            summary: format!("Slack app {}", slack.client_id),
        })
    }
}
