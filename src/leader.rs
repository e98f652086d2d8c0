//! Leader election on a Lease (kube-lease-manager): one replica mints, the others keep their
//! caches warm and take over within the lease duration.
//!
//! The election publishes `true` while this process holds the Lease. It publishes `false` as
//! soon as it is unsure: a failed renewal counts as lost (the controllers stop starting
//! reconciles at once, well before another replica may take the Lease at its expiry), and a
//! fresh manager then asks again. When every receiver is gone the Lease is released, so that a
//! rolling update hands over without waiting for the lease to expire.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{info, warn};

/// How long to wait after a failed election step before asking again.
const RETRY: Duration = Duration::from_secs(2);

/// Where and as whom to elect.
#[derive(Clone, Debug)]
pub struct Election {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub lease: String,
    /// This process's identity in the Lease (`holderIdentity`).
    pub identity: String,
    /// How long a holder keeps the Lease without renewing it.
    pub duration: Duration,
}

/// The default Lease name: one per namespace selector, so that instances serving disjoint
/// shards (`--namespace-selector`) each elect their own leader.
pub fn default_lease_name(namespace_selector: Option<&str>) -> String {
    match namespace_selector {
        None => "patchbay".into(),
        Some(selector) => {
            let digest = hex::encode(Sha256::digest(selector.as_bytes()));
            format!("patchbay-{}", &digest[..10])
        }
    }
}

/// This process's identity: the pod's name when it runs in a pod, else host and process id.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "patchbay".into());
    format!("{host}-{}", std::process::id())
}

impl Election {
    /// Seconds before expiry at which the holder renews: a third of the duration, at least 2.
    fn grace(&self) -> u64 {
        (self.duration.as_secs() / 3).max(2)
    }

    async fn manager(
        &self,
        client: &Client,
    ) -> Result<LeaseManager, kube_lease_manager::LeaseManagerError> {
        LeaseManagerBuilder::new(client.clone(), &self.lease)
            .with_namespace(&self.namespace)
            .with_identity(&self.identity)
            .with_duration(self.duration.as_secs())
            .with_grace(self.grace())
            .with_field_manager("patchbay-leader-election")
            .build()
            .await
    }
}

/// Starts electing: the receiver says whether this process leads. Dropping every receiver
/// releases the Lease and ends the task (await it to release before exiting).
pub fn elect(
    client: Client,
    election: Election,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        info!(lease = %format!("{}/{}", election.namespace, election.lease), identity = %election.identity, "electing a leader");
        loop {
            let manager = match election.manager(&client).await {
                Ok(manager) => manager,
                Err(e) => {
                    warn!(error = %e, "cannot read the leader Lease; retrying");
                    tokio::select! {
                        () = tx.closed() => return,
                        () = tokio::time::sleep(RETRY) => continue,
                    }
                }
            };
            if follow(&manager, &tx).await.is_break() {
                if let Err(e) = manager.release().await {
                    warn!(error = %e, "could not release the leader Lease; it expires by itself");
                }
                return;
            }
            // Unsure whether the Lease is still held: lead no more, ask again with a fresh manager.
            tx.send_replace(false);
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    });
    (rx, task)
}

/// Publishes `manager`'s changes until every receiver is gone (`Break`) or a step fails
/// (`Continue`).
async fn follow(manager: &LeaseManager, tx: &watch::Sender<bool>) -> std::ops::ControlFlow<()> {
    loop {
        tokio::select! {
            () = tx.closed() => return std::ops::ControlFlow::Break(()),
            changed = manager.changed() => match changed {
                Ok(leading) => {
                    if leading {
                        info!("became the leader");
                    } else {
                        info!("lost the leader Lease; standing by");
                    }
                    tx.send_replace(leading);
                }
                Err(e) => {
                    warn!(error = %e, "leader election step failed; standing by until it is sure");
                    return std::ops::ControlFlow::Continue(());
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_with_different_namespace_selectors_elect_on_different_leases() {
        let a = default_lease_name(Some("patchbay.dev/shard=a"));
        let b = default_lease_name(Some("patchbay.dev/shard=b"));
        assert_ne!(a, b);
        assert_eq!(a, default_lease_name(Some("patchbay.dev/shard=a")));
        assert_eq!(default_lease_name(None), "patchbay");
        assert!(a.len() <= 63, "a Lease name is a DNS subdomain");
    }
}
