//! Where a test finds a peer that a `scripts/` installer provides (the registry, verdaccio,
//! crane, the OAuth server): the variable `scripts/test` exports, else what the script prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The path in `$env` when it is set, else the path `scripts/<script>` prints (installing the
/// peer on first use), if that is a file.
pub fn installed(env: &str, script: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let out = Command::new(workspace.join("scripts").join(script))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_file()).then_some(path)
}
