//! The long-lived clients and caches provider calls share.

use super::github_app::client::GithubClient;

/// Long-lived clients and caches shared by every provider call.
#[derive(Default)]
pub struct Services {
    /// GitHub: cached App JWTs and installation ids (the HTTP clients come from
    /// [`network::process`](super::network::process), per trusted CA bundle).
    pub github: GithubClient,
}
