//! patchbay: reusable credential `Connection`s for CI on Kubernetes, and `VcsAuthToken`s that
//! mint short-lived credentials from them into Secrets that build pods mount.
#![forbid(unsafe_code)]

pub mod api;
pub mod conditions;
pub mod controller;
pub mod github_app_create;
pub mod glob;
pub mod hierarchy;
pub mod install;
pub mod leader;
pub mod login;
pub mod loopback;
pub mod output;
pub mod providers;
pub mod renewal;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod scope;
pub mod telemetry;

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn terminated() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
