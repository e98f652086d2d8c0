//! `patchbay run` against a cluster as a user starts it: without the CRDs it says what to
//! install and exits; with them it starts the controllers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use testkit::apiserver::{Emulator, EmulatorOptions};

fn kubeconfig(emulator: &Emulator) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "patchbay-cli-{}-{}",
        std::process::id(),
        emulator.url().len()
    ));
    emulator.write_kubeconfig(&path).unwrap();
    path
}

#[tokio::test]
async fn run_without_the_crds_names_what_to_install_and_exits() {
    let emulator = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let config = kubeconfig(&emulator);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args(["run", "--root-namespace", "ci"])
            .env("KUBECONFIG", &config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
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

#[tokio::test]
async fn run_with_the_crds_starts_the_controllers_and_stops_on_sigterm() {
    let emulator = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(emulator.client());
    for (_, crd) in patchbay::api::crd::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let config = kubeconfig(&emulator);
    let log = std::env::temp_dir().join(format!("patchbay-cli-{}.log", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["run", "--root-namespace", "ci"])
        .env("KUBECONFIG", &config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
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
