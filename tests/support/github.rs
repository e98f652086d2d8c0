//! The GitHub side of the tests: App `acme-ci` installed on organisation `acme` on the
//! simulator (over HTTP, or over HTTPS behind a private CA as a GitHub Enterprise Server), and
//! the spec of a Connection to it.

use serde_json::{Value, json};
use testkit::github::{AccountType, AppSpec, GithubSim, InstallationSpec, SimConfig};
use testkit::keys::RsaKey;
use testkit::tls::TestCa;

/// Installs App `app_id` on organisation `acme` of `sim` (repository `app`, `contents: read`);
/// returns the App's key.
pub fn install_acme(sim: &GithubSim, app_id: u64) -> RsaKey {
    let key = RsaKey::generate();
    sim.add_app(AppSpec::new(app_id, "acme-ci", &key));
    sim.add_owner("acme", AccountType::Organization);
    sim.add_repo("acme", "app");
    sim.add_installation(InstallationSpec::new(app_id, "acme").permissions([("contents", "read")]));
    key
}

/// The simulator behind `ca`, with App 7 installed on owner `acme` (see [`install_acme`]), and
/// the App's key.
pub async fn behind(ca: &TestCa) -> (GithubSim, RsaKey) {
    let sim = GithubSim::start_tls(SimConfig::default(), ca.server_config())
        .await
        .unwrap();
    let key = install_acme(&sim, 7);
    (sim, key)
}

/// The spec of a Connection to App `app_id` on the GitHub at `server`, for owner `acme`, its
/// key under `private-key.pem` in the Secret `key_secret`.
pub fn github_app(server: &str, app_id: u64, key_secret: &str) -> Value {
    json!({"githubApp": {
        "serverUrl": server, "appId": app_id.to_string(),
        "privateKey": {"name": key_secret, "key": "private-key.pem"},
        "ownerUrl": format!("{server}/acme"),
    }})
}
