//! patchbay: reusable credential `Connection`s for CI on Kubernetes, and `VcsAuthToken`s that
//! mint short-lived credentials from them into Secrets that build pods mount.
#![forbid(unsafe_code)]

pub mod api;
pub mod hierarchy;
pub mod install;
