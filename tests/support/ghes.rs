//! A GitHub Enterprise Server behind a private CA: the simulator over HTTPS, with one App.

use testkit::github::{AccountType, AppSpec, GithubSim, InstallationSpec, SimConfig};
use testkit::keys::RsaKey;
use testkit::tls::TestCa;

/// The simulator behind `ca`, with App 7 installed on owner `acme` (repository `app`,
/// `contents: read`), and the App's key.
pub async fn behind(ca: &TestCa) -> (GithubSim, RsaKey) {
    let sim = GithubSim::start_tls(SimConfig::default(), ca.server_config())
        .await
        .unwrap();
    let key = RsaKey::generate();
    sim.add_app(AppSpec::new(7, "acme-ci", &key));
    sim.add_owner("acme", AccountType::Organization);
    sim.add_repo("acme", "app");
    sim.add_installation(InstallationSpec::new(7, "acme").permissions([("contents", "read")]));
    (sim, key)
}
