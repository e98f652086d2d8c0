//! What the operator tells the outside about itself: Prometheus metrics and health, served on
//! one port (`--http-address`) as `/metrics`, `/healthz` and `/readyz`.
//!
//! ```text
//!  controllers ──record──▶ Metrics ──┐
//!  caches, leader election ─▶ Health ─┴─▶ http::serve (/metrics, /healthz, /readyz)
//! ```

pub mod http;
mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};

pub use metrics::{Call, Metrics};

/// Metrics and health of one operator process, shared by the controllers and the HTTP server.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// The Prometheus metrics.
    pub metrics: Metrics,
    /// Whether the caches have synced (`/readyz`).
    synced: AtomicBool,
}

impl Telemetry {
    /// Marks the namespace and connection caches as synced: `/readyz` answers 200 from now on.
    pub fn caches_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// Whether `/readyz` answers 200: the caches have synced. A standby is ready too (its
    /// caches are warm, it takes over without a relist).
    pub fn is_ready(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}
