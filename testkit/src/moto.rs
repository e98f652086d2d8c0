//! moto's server (PyPI `moto[server]`, pinned by `scripts/test`) as a local AWS peer for tests:
//! STS, IAM and ECR on `127.0.0.1`, one process per [`MotoServer`], killed on drop.
//!
//! moto accepts any credentials until IAM enforcement is switched on ([`MotoServer::enforce_iam`]):
//! from then on every request must be signed by an access key moto issued, and identity
//! policies (and role trust policies for `sts:AssumeRole`) are evaluated. Set up users, roles
//! and keys with moto's default credentials first, then enforce.
//!
//! moto 5.2.1 has no ECR Public backend; [`EcrPublicStub`] answers ECR Public's
//! `GetAuthorizationToken` in its place.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long moto may take to answer after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The environment variable that names the `moto_server` binary.
pub const MOTO_SERVER_ENV: &str = "PATCHBAY_MOTO_SERVER";
/// The access key ID and secret moto's examples use; any pair works until IAM is enforced.
pub const DEFAULT_KEY: (&str, &str) = ("test", "test");
/// The account moto puts everything in.
pub const ACCOUNT_ID: &str = "123456789012";

/// A running `moto_server` on a free port of 127.0.0.1.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl MotoServer {
    /// The `moto_server` binary: `$PATCHBAY_MOTO_SERVER`, else the workspace's
    /// `.venv/bin/moto_server` (what `scripts/test` installs), else `moto_server` on `PATH`.
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(MOTO_SERVER_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
        let venv = workspace.join(".venv/bin/moto_server");
        if venv.is_file() {
            return Some(venv);
        }
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.is_file())
    }

    /// Starts moto and waits until it answers (up to 20 s).
    pub fn start() -> io::Result<Self> {
        let binary = Self::binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "moto_server not found: set {MOTO_SERVER_ENV}, or run scripts/test (it installs \
                     moto into .venv), or `pip install 'moto[server]==5.2.1'`"
                ),
            )
        })?;
        let mut last = None;
        // A free port can be taken between probing and moto binding it: try a few.
        for _ in 0..3 {
            match Self::spawn(&binary) {
                Ok(server) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    /// Starts moto for a test, or explains loudly why the test is skipped: `None` only when no
    /// `moto_server` exists and the `CI` environment variable is not set. In CI a missing moto
    /// fails the test, since CI installs it; a moto that exists but does not start always fails.
    pub fn for_test(test: &str) -> Option<Self> {
        if Self::binary().is_none() {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(
                !ci,
                "{test}: moto_server is missing in CI; scripts/test installs it into .venv \
                 (or set {MOTO_SERVER_ENV})"
            );
            // Straight to stderr: the test harness captures eprintln! of passing tests.
            let _ = writeln!(
                io::stderr(),
                "\n!!! SKIPPED {test}: moto_server not found. Run scripts/moto install (or \
                 scripts/test), or set {MOTO_SERVER_ENV}.\n"
            );
            return None;
        }
        match Self::start() {
            Ok(server) => Some(server),
            Err(e) => panic!("{test}: moto_server did not start: {e}"),
        }
    }

    fn spawn(binary: &Path) -> io::Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let log =
            std::env::temp_dir().join(format!("patchbay-moto-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Our own switch decides when IAM is enforced; never inherit one.
            .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", binary.display())))?;
        let mut server = Self { child, port, log };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "moto_server exited with {status} before answering:\n{}",
                    server.log_tail()
                )));
            }
            if let Ok((200, _)) = server.request("GET", "/moto-api/", "") {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "moto_server did not answer within {} s:\n{}",
                        START_TIMEOUT.as_secs(),
                        server.log_tail()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`, the endpoint URL for every service.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets every resource (`POST /moto-api/reset`). Does not change IAM enforcement.
    pub fn reset(&self) -> io::Result<()> {
        self.expect_ok("POST", "/moto-api/reset", "")
    }

    /// Switches IAM enforcement on for every later request (`POST /moto-api/reset-auth` with
    /// `0`, the runtime form of `INITIAL_NO_AUTH_ACTION_COUNT=0`). From then on requests must be
    /// signed with keys moto issued (else `InvalidClientTokenId` / `SignatureDoesNotMatch`),
    /// and actions must be allowed by the caller's identity policies; for `sts:AssumeRole` of a
    /// role moto knows, the role's trust policy too (principal and `StringEquals` conditions,
    /// e.g. `sts:ExternalId`). `sts:GetCallerIdentity` is always allowed.
    pub fn enforce_iam(&self) -> io::Result<()> {
        self.expect_ok("POST", "/moto-api/reset-auth", "0")
    }

    /// Switches IAM enforcement off again.
    pub fn stop_enforcing_iam(&self) -> io::Result<()> {
        self.expect_ok("POST", "/moto-api/reset-auth", "inf")
    }

    /// The end of moto's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn expect_ok(&self, method: &str, path: &str, body: &str) -> io::Result<()> {
        match self.request(method, path, body)? {
            (200, _) => Ok(()),
            (status, text) => Err(io::Error::other(format!(
                "{method} {path}: HTTP {status}: {text}"
            ))),
        }
    }

    /// A minimal HTTP/1.1 exchange with moto's control API.
    fn request(&self, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not HTTP: {response:.80}")))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("moto log kept at {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Stands in for ECR Public, which moto 5.2.1 does not implement: answers
/// `SpencerFrontendService.GetAuthorizationToken` (awsJson1.1) with the token
/// `base64("AWS:ecr-public-password")` expiring at [`EcrPublicStub::EXPIRES_AT`], and records
/// the credential scope of every request so tests can check the signing region and service.
#[derive(Debug)]
pub struct EcrPublicStub {
    addr: SocketAddr,
    scopes: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EcrPublicStub {
    /// The password inside the token the stub hands out.
    pub const PASSWORD: &str = "ecr-public-password";
    /// The expiry it reports, in seconds since the epoch (2100-01-01).
    pub const EXPIRES_AT: i64 = 4_102_444_800;

    /// Starts the stub on a free port of 127.0.0.1 (on the caller's tokio runtime).
    pub async fn start() -> io::Result<Self> {
        use http_body_util::{BodyExt as _, Full};
        use hyper::{Request, Response, StatusCode};

        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let recorded = scopes.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = recorded.clone();
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let recorded = recorded.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let _ = body.collect().await;
                            let header = |name: &str| {
                                parts
                                    .headers
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_string()
                            };
                            let scope = header("authorization")
                                .split_once("Credential=")
                                .and_then(|(_, rest)| rest.split(',').next())
                                .map(|c| c.split('/').skip(1).collect::<Vec<_>>().join("/"))
                                .unwrap_or_default();
                            recorded
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(scope);
                            let (status, body) = if header("x-amz-target")
                                == "SpencerFrontendService.GetAuthorizationToken"
                            {
                                (StatusCode::OK, Self::token_answer())
                            } else {
                                (
                                    StatusCode::BAD_REQUEST,
                                    r#"{"__type":"UnsupportedOperation","message":"stub"}"#.into(),
                                )
                            };
                            let mut response = Response::new(Full::new(bytes::Bytes::from(body)));
                            *response.status_mut() = status;
                            response.headers_mut().insert(
                                "content-type",
                                hyper::header::HeaderValue::from_static(
                                    "application/x-amz-json-1.1",
                                ),
                            );
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        Ok(Self { addr, scopes, task })
    }

    fn token_answer() -> String {
        use base64::Engine as _;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("AWS:{}", Self::PASSWORD));
        serde_json::json!({
            "authorizationData": {"authorizationToken": token, "expiresAt": Self::EXPIRES_AT}
        })
        .to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The credential scopes (`date/region/service/aws4_request`) of the requests so far.
    pub fn scopes(&self) -> Vec<String> {
        self.scopes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for EcrPublicStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}
