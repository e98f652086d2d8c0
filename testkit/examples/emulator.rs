//! Runs the Kubernetes API emulator in the foreground until Ctrl-C.
//!
//! `cargo run -p testkit --example emulator -- [KUBECONFIG_PATH]` (default
//! `.sandbox/kubeconfig`), then `kubectl --kubeconfig KUBECONFIG_PATH get ns`.

use testkit::apiserver::{Emulator, EmulatorOptions};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| ".sandbox/kubeconfig".into());
    let emu = Emulator::start(EmulatorOptions::default()).await?;
    emu.write_kubeconfig(&path)?;
    println!("emulator at {}; kubeconfig written to {path}", emu.url());
    println!("try: kubectl --kubeconfig {path} get namespaces");
    tokio::signal::ctrl_c().await?;
    emu.shutdown().await;
    Ok(())
}
