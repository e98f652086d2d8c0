//! `patchbay github-app create` end to end: the command serves the manifest form on loopback,
//! a browser (the test, following the pages as a browser would) posts it to the GitHub
//! simulator, which creates the app and redirects back with a code; the command exchanges the
//! code, writes the key Secret and the githubApp Connection through the kubeconfig, and prints
//! the installation link. The real controllers then verify the new app and mint from it once
//! it is installed. Against a real kube-apiserver.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use patchbay::api::{Condition, ConditionStatus, Connection};
use serde_json::json;
use support::cluster::{Cluster, ROOT};
use testkit::github::{GithubSim, InstallationSpec, SimConfig, route};

fn is_true(c: &Condition) -> bool {
    c.status == ConditionStatus::True
}

/// The value of `name="..."`-style attribute `attr` after `from` in `html`, unescaped.
fn attribute(html: &str, from: &str, attr: &str) -> String {
    let start = html.find(from).expect("the element") + from.len();
    let rest = &html[start..];
    let at = rest.find(&format!("{attr}=\"")).expect("the attribute") + attr.len() + 2;
    let value = &rest[at..at + rest[at..].find('"').unwrap()];
    value
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn github_app_create_registers_an_app_from_a_manifest_and_patchbay_mints_from_it() {
    let sim = GithubSim::start(SimConfig::default()).await.unwrap();
    let cluster = Cluster::start().await;
    let kubeconfig = (cluster.server)
        .kubeconfig_path(testkit::envtest::Identity::Admin)
        .expect("a kubeconfig for the test's server");
    let mut command = Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["github-app", "create", "--name", "ACME CI", "--org", "acme"])
        .args(["--server-url", &sim.url(), "--namespace", &cluster.ns(ROOT)])
        .args([
            "--permission",
            "contents=read",
            "--permission",
            "metadata=read",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("patchbay github-app create starts");
    let stderr = command.stderr.take().unwrap();
    let (said, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    let open = loop {
        let line = lines.recv().await.expect("the command says where to go");
        if let Some(rest) = line.strip_prefix("Open ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };

    // The browser: the form page, its automatic post to GitHub, GitHub's redirect back.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(&open)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = attribute(&page, "<form", "action");
    let manifest = attribute(&page, "name=\"manifest\"", "value");
    let registered: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(registered["default_permissions"]["contents"], "read");
    assert!(
        action.starts_with(&format!(
            "{}/organizations/acme/settings/apps/new?state=",
            sim.url()
        )),
        "{action}"
    );
    let created = browser
        .post(&action)
        .form(&[("manifest", manifest.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 302);
    let back = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&open), "{back}");
    // A forged redirect (another state) is refused and changes nothing.
    let forged = back.replace("state=", "state=0");
    assert_eq!(browser.get(&forged).send().await.unwrap().status(), 400);
    assert_eq!(browser.get(&back).send().await.unwrap().status(), 200);

    let out = tokio::task::spawn_blocking(move || command.wait_with_output().unwrap())
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Ok(line) = lines.try_recv() {
        rest.push(line);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", rest.join("\n"));
    assert!(
        stdout.contains(&format!("{}/apps/acme-ci/installations/new", sim.url())),
        "{stdout}"
    );
    assert_eq!(sim.calls(route::CONVERT_MANIFEST), 1);
    let printed = rest.join("\n");
    assert!(!printed.contains("BEGIN RSA PRIVATE KEY") && !stdout.contains("PRIVATE KEY"));

    // The Connection patchbay wrote is Ready; the live check signs in as the new app and
    // finds it is not installed yet, which is what the printed link is for.
    cluster.connection_ready(ROOT, "acme-ci", is_true).await;
    let verified = cluster
        .connection_verified(ROOT, "acme-ci", |c| c.reason == "InstallationNotFound")
        .await;
    assert!(
        verified.message.contains("not installed on acme"),
        "{}",
        verified.message
    );
    let conn: Connection = cluster.api(ROOT).get("acme-ci").await.unwrap();
    let app = conn.spec.github_app.expect("a githubApp connection");
    assert_eq!(
        app.owner_url.as_deref(),
        Some(format!("{}/acme", sim.url()).as_str())
    );
    let app_id: u64 = app.app_id.parse().unwrap();
    let secret = cluster
        .secret_text(ROOT, "acme-ci-app")
        .await
        .expect("the key Secret");
    assert!(secret["private-key.pem"].contains("PRIVATE KEY"));

    // Installed on acme, it mints.
    sim.add_repo("acme", "app");
    sim.add_installation(InstallationSpec::new(app_id, "acme").repositories(&["app"]));
    cluster
        .apply(json!({
            "apiVersion": "patchbay.dev/v1alpha1", "kind": "VcsAuthToken",
            "metadata": {"name": "build", "namespace": ROOT},
            "spec": {"connection": "acme-ci", "github": {"repositories": ["app"]}},
        }))
        .await;
    cluster.token_ready(ROOT, "build", is_true).await;
    assert_eq!(sim.mint_count(), 1);
    assert!(cluster.operator_running());
    cluster.stop().await;
}
