//! A real HTTP/HTTPS forward proxy for tests: proxy.py from PyPI (pinned in scripts/proxy),
//! started on a free loopback port. Its access log tells which requests went through it.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Names the `proxy` binary of proxy.py, overriding the workspace's `.venv`.
pub const PROXY_SERVER_ENV: &str = "PATCHBAY_PROXY_SERVER";

/// A running proxy.py, stopped on drop.
pub struct ProxyServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl ProxyServer {
    /// The `proxy` binary: `$PATCHBAY_PROXY_SERVER`, else the workspace's `.venv/bin/proxy`
    /// (what `scripts/test` installs with `scripts/proxy install`).
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(PROXY_SERVER_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
        Some(workspace.join(".venv/bin/proxy")).filter(|p| p.is_file())
    }

    /// Starts proxy.py on 127.0.0.1 and waits until it accepts connections (up to 20 s).
    pub fn start() -> io::Result<Self> {
        let binary = Self::binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("proxy.py not found: run scripts/proxy install, or set {PROXY_SERVER_ENV}"),
            )
        })?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let log =
            std::env::temp_dir().join(format!("patchbay-proxy-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log)?;
        // Its own process group: proxy.py runs acceptors and workers as child processes, which
        // hold the listening socket and the tunnels; stopping it stops the whole group.
        let child = Command::new(&binary)
            .process_group(0)
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--num-workers", "1", "--num-acceptors", "1"])
            // At debug level every tunnel is logged when it opens ("Connecting to upstream
            // HOST:PORT"), not only when it closes.
            .args(["--log-level", "d"])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", binary.display())))?;
        let mut proxy = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(status) = proxy.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "proxy.py exited with {status}:\n{}",
                    proxy.log()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "proxy.py did not listen within 20 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(proxy)
    }

    /// `http://127.0.0.1:PORT`: the value for HTTPS_PROXY and HTTP_PROXY.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The log so far: `Connecting to upstream HOST:PORT` for every connection it makes (a
    /// tunnel or a forwarded request), and an access line per forwarded HTTP request
    /// (`POST 127.0.0.1:5000/`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the proxy, its workers and every tunnel through them.
    pub fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        self.stop();
    }
}
