//! The HTTP layer: the hyper server and the state its connections share, the test controls
//! with their admin endpoint, and the routing of each request to discovery, OpenAPI, a verb or
//! a watch.
//!
//! ```text
//!  server.rs (hyper: reads a request, consults faults.rs, writes JSON or a watch stream)
//!     ├──▶ admin.rs (/emulator/: counters, faults, compaction, cut watches)
//!     ├──▶ handlers.rs ──▶ discovery.rs, openapi.rs; the verbs and watches (../verbs/)
//!     ▼
//!  state.rs: Shared (the store's lock, shutdown and cut signals), Control (faults, counters)
//! ```

mod admin;
mod discovery;
pub(super) mod faults;
mod handlers;
mod openapi;
pub(super) mod server;
pub(super) mod state;
