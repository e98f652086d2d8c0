//! verdaccio (an npm registry server, from npm, pinned by `scripts/verdaccio`) as a local peer
//! for tests: one process per [`Verdaccio`] on a free port of 127.0.0.1, storage in a
//! temporary directory, no uplinks (it never leaves the machine), killed on drop.

use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::loopback_request;

/// The environment variable that names the verdaccio binary (`scripts/test` sets it).
pub const VERDACCIO_ENV: &str = "PATCHBAY_VERDACCIO";
/// How long verdaccio may take to answer after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running verdaccio.
pub struct Verdaccio {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Verdaccio {
    /// The verdaccio binary: `$PATCHBAY_VERDACCIO`, else what `scripts/verdaccio` installed.
    pub fn binary() -> Option<PathBuf> {
        crate::peer::installed(VERDACCIO_ENV, "verdaccio")
    }

    /// Starts verdaccio and waits until `/-/ping` answers.
    pub async fn start() -> io::Result<Self> {
        let binary = Self::binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "verdaccio is not installed: run scripts/verdaccio, or set {VERDACCIO_ENV}"
                ),
            )
        })?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir =
            std::env::temp_dir().join(format!("patchbay-verdaccio-{port}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("storage"))?;
        let config = format!(
            "storage: {storage}\nauth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 100\nuplinks: {{}}\nweb: {{ enable: false }}\npackages:\n  '@*/*':\n    access: $all\n    publish: $authenticated\n  '**':\n    access: $all\n    publish: $authenticated\nlog: {{ type: stdout, format: pretty, level: fatal }}\n",
            storage = dir.join("storage").display(),
            htpasswd = dir.join("htpasswd").display(),
        );
        std::fs::write(dir.join("config.yaml"), config)?;
        let log = std::fs::File::create(dir.join("verdaccio.log"))?;
        let child = Command::new(&binary)
            .arg("--config")
            .arg(dir.join("config.yaml"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let verdaccio = Self { child, port, dir };
        verdaccio.wait_until_up().await?;
        Ok(verdaccio)
    }

    async fn wait_until_up(&self) -> io::Result<()> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            let ping = loopback_request(self.port, "GET", "/-/ping", None).await;
            if ping.is_some_and(|(status, _)| status == 200) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.dir.join("verdaccio.log")).unwrap_or_default();
        Err(io::Error::other(format!("verdaccio did not start: {log}")))
    }

    /// `http://127.0.0.1:PORT/`, as `spec.npmRegistry.registryUrl` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Creates user `name` and returns the token verdaccio issued for it.
    pub async fn add_user(&self, name: &str, password: &str) -> io::Result<String> {
        let body = serde_json::json!({"_id": format!("org.couchdb.user:{name}"), "name": name,
            "password": password, "type": "user", "roles": []});
        let path = format!("/-/user/org.couchdb.user:{name}");
        let (status, answer) = loopback_request(self.port, "PUT", &path, Some(&body.to_string()))
            .await
            .ok_or_else(|| io::Error::other("verdaccio did not answer"))?;
        let token = serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_owned));
        token.ok_or_else(|| io::Error::other(format!("adding a user: HTTP {status}: {answer}")))
    }
}
