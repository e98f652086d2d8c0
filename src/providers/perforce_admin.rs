//! Perforce Helix Core administrator logins: `P4PORT`, `P4USER` and `P4PASSWD`. The password
//! is long-lived: copied only where the connection allows. patchbay has no Perforce client
//! (the protocol is proprietary and `p4` is not in the operator image), so the live check
//! reports `Unknown` and no ticket is obtained.

use async_trait::async_trait;

use super::{
    Env, Minted, Plan, Provider, ProviderError, Request, SecretValues, Services, Validated,
    Verification, block,
};
use crate::api::token::SecretFormat;
use crate::api::{Connection, ConnectionKind, ConnectionSpec};
use crate::output::Credential;

/// The Verified reason of a Perforce connection: patchbay cannot try the login.
pub const CLIENT_NOT_AVAILABLE: &str = "PerforceClientNotAvailable";

pub(super) struct PerforceAdminProvider;

#[async_trait]
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

    fn plan(&self, request: &Request<'_>) -> Result<Plan, ProviderError> {
        Plan::copied(request, "Perforce password", SecretFormat::Opaque)
    }

    async fn verify(
        &self,
        conn: &Connection,
        _env: &Env<'_>,
        _secrets: &SecretValues,
        _services: &Services,
    ) -> Verification {
        let host = (conn.spec.perforce_admin.as_ref()).map_or("", |p| p.host.as_str());
        Verification::Unknown {
            reason: CLIENT_NOT_AVAILABLE,
            message: format!(
                "patchbay has no Perforce client (p4) to try the login at {host}; the settings \
                 are valid, the password is unchecked"
            ),
        }
    }

    async fn mint(
        &self,
        request: &Request<'_>,
        secrets: &SecretValues,
        _services: &Services,
    ) -> Result<Minted, ProviderError> {
        let p4 = block(&request.connection.spec.perforce_admin, "perforceAdmin")?;
        let password = secrets.text("spec.perforceAdmin.password", &p4.password)?;
        Ok(Minted::credential(Credential::Perforce {
            port: p4.host.clone(),
            user: p4.user.clone(),
            password: password.trim_end_matches(['\r', '\n']).to_string(),
        }))
    }
}
