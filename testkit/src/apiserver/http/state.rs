//! The state every connection shares: the store behind its lock, the server's address and
//! watch settings, the shutdown and cut-watches signals, and the test controls (faults and
//! counters). `server.rs` serves with it, `admin.rs` and the [`Emulator`] change it.
//!
//! [`Emulator`]: crate::apiserver::Emulator

use super::faults::{Counters, Faults};
use crate::apiserver::store::Store;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch as signal;

/// State shared by all connections.
pub(in crate::apiserver) struct Shared {
    /// The store; handlers hold the lock only while computing a reply, never across I/O.
    pub store: Mutex<Store>,
    /// `host:port`, for `/api`'s serverAddressByClientCIDRs.
    pub address: String,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Flips to true (or is dropped) on shutdown.
    pub shutdown: signal::Receiver<bool>,
    /// Faults and counters.
    pub control: Mutex<Control>,
    /// Bumped to cut all open watches.
    pub cut: signal::Sender<u64>,
}

/// Test controls shared by all requests.
#[derive(Debug, Default)]
pub(in crate::apiserver) struct Control {
    /// Injected faults.
    pub faults: Faults,
    /// Requests served per verb and resource.
    pub counters: Counters,
    rng: u64,
}

impl Control {
    /// A uniform roll in [0, 1) (splitmix64; reproducible per run, which is all tests need).
    pub(super) fn roll(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Shared {
    /// Locks the test controls.
    pub fn control(&self) -> MutexGuard<'_, Control> {
        self.control
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Locks the store; a panic in another request does not wedge the emulator.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
