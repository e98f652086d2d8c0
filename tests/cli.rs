//! `patchbay run` against a cluster as a user starts it: without the CRDs it says what to
//! install and exits; with them it starts the controllers; a namespace selector the server
//! refuses stops it with the reason.
//!
//! The first test runs on the emulator: it needs a server without patchbay's CRDs, and the
//! real kube-apiserver is shared by every test of this binary. The others run on the server
//! `PATCHBAY_TEST_SERVER` selects (the real kube-apiserver by default), as the operator identity.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::apiserver::{Emulator, EmulatorOptions};
use testkit::envtest::{Identity, TestServer};

/// Runs `patchbay run --root-namespace ci ARGS` with `config`, expects it to fail, and returns
/// what it printed on stderr.
async fn run_until_it_exits(config: std::path::PathBuf, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args([
                "run",
                "--root-namespace",
                "ci",
                "--http-address",
                "127.0.0.1:0",
            ])
            .args(&args)
            .env("KUBECONFIG", &config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "patchbay run succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn run_without_the_crds_names_what_to_install_and_exits() {
    let server = TestServer::Emulator(Emulator::start(EmulatorOptions::default()).await.unwrap());
    let config = server
        .kubeconfig_path(Identity::Admin)
        .expect("the emulator's kubeconfig is written");
    let stderr = run_until_it_exits(config, &[]).await;
    assert!(
        stderr.contains("CustomResourceDefinition connections.patchbay.dev is not installed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("CustomResourceDefinition vcsauthtokens.patchbay.dev is not installed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("patchbay crd | kubectl apply --server-side -f -"),
        "{stderr}"
    );
}

/// A kubeconfig for the operator identity on the selected server, with the CRDs installed.
async fn operator_kubeconfig() -> (TestServer, std::path::PathBuf) {
    let server = TestServer::start().await;
    let admin = server.client(Identity::Admin).await;
    support::cluster::install(&server, &admin).await;
    let config = server
        .kubeconfig_path(Identity::Operator)
        .expect("run these tests on the test API server or the emulator");
    (server, config)
}

#[tokio::test]
async fn run_with_the_crds_starts_the_controllers_and_stops_on_sigterm() {
    let (_server, config) = operator_kubeconfig().await;
    let log = std::env::temp_dir().join(format!("patchbay-cli-{}.log", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args([
            "run",
            "--root-namespace",
            "ci",
            "--http-address",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &config)
        .env("RUST_LOG", "info,kube_runtime=debug")
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut child = support::KillOnDrop(child, Some(log.clone()));
    let child = &mut child.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("starting controllers")
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "run exited: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(Instant::now() < deadline, "no controllers after 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "run did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_namespace_selector_the_server_refuses_stops_run_with_the_reason() {
    let (_server, config) = operator_kubeconfig().await;
    let stderr = run_until_it_exits(config, &["--namespace-selector", "team in (a"]).await;
    assert!(
        stderr.contains("--namespace-selector \"team in (a\" is refused by the API server"),
        "{stderr}"
    );
}
