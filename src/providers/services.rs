//! The long-lived clients and caches provider calls share.

use super::github_app::client::GithubClient;

/// Long-lived clients and caches shared by every provider call.
#[derive(Default)]
pub struct Services {
    /// GitHub: one connection pool, cached App JWTs and installation ids.
    pub github: GithubClient,
}
