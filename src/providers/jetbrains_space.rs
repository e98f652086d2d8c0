//! JetBrains Space applications.

use super::url::{base, parse_http};
use super::{Provider, ProviderError, SecretValues, Validated, block};
use crate::api::connection::SpaceMode;
use crate::api::{ConnectionKind, ConnectionSpec};
use crate::conditions::reasons;

pub(super) struct JetbrainsSpaceProvider;

impl Provider for JetbrainsSpaceProvider {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::JetbrainsSpace
    }

    fn validate(
        &self,
        spec: &ConnectionSpec,
        _: &SecretValues,
    ) -> Result<Validated, ProviderError> {
        let space = block(&spec.jetbrains_space, "jetbrainsSpace")?;
        let url = parse_http("spec.jetbrainsSpace.serverUrl", &space.server_url)?;
        let scope = match (space.mode, &space.project) {
            (SpaceMode::Project, Some(project)) => format!("project {project}"),
            (SpaceMode::Project, None) => {
                return Err(ProviderError::config(
                    reasons::INVALID_SPEC,
                    "spec.jetbrainsSpace.project: required when mode is project",
                ));
            }
            (SpaceMode::Organization, _) => "the organization".to_string(),
        };
        Ok(Validated {
            summary: format!("JetBrains Space at {} for {scope}", base(&url, "")),
        })
    }
}
