//! Runs the sandbox in the foreground until Ctrl-C or SIGTERM: an emulator, a kubeconfig at
//! `.sandbox/kubeconfig`, and the given manifests installed.
//!
//! `cargo run -p testkit --example sandbox -- [MANIFEST_FILE_OR_DIR...]`

use testkit::sandbox::{Sandbox, SandboxOptions, wait_for_signal};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifests = std::env::args().skip(1).map(Into::into).collect();
    let sandbox = Sandbox::start(SandboxOptions {
        manifests,
        ..Default::default()
    })
    .await?;
    print!("{}", sandbox.banner());
    wait_for_signal().await;
    sandbox.shutdown().await;
    Ok(())
}
