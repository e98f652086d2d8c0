//! The Docker registry (the CNCF distribution registry, from Debian's `docker-registry`
//! package, pinned by `scripts/registry`) as a local peer for tests: one process per
//! [`Registry`] on a free port of 127.0.0.1, plain HTTP, storage in a temporary directory,
//! killed on drop. Two ways to sign in, as real registries offer them:
//!
//! - [`Auth::Htpasswd`]: basic auth against an htpasswd file (bcrypt);
//! - [`Auth::Token`]: the Docker token protocol, with [`TokenService`] (below) as the token
//!   server: it checks the login by basic auth and signs ES256 JWTs that the registry trusts
//!   through its `rootcertbundle`.

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use crate::http::{Answer, Handler, Server};

/// The environment variable that names the registry binary (`scripts/test` sets it).
pub const REGISTRY_ENV: &str = "PATCHBAY_REGISTRY";
/// How long the registry may take to answer after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The token service's name, as the registry's challenge names it.
pub const SERVICE: &str = "patchbay-test-registry";
/// The token issuer the registry trusts.
const ISSUER: &str = "patchbay-test-token-service";

/// How the registry signs users in.
pub enum Auth {
    /// Basic auth with these users and passwords.
    Htpasswd(Vec<(String, String)>),
    /// The token protocol, with this token service.
    Token(Arc<TokenService>),
}

/// A running registry.
pub struct Registry {
    child: Child,
    port: u16,
    dir: PathBuf,
    token_server: Option<Server>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Registry {
    /// The registry binary: `$PATCHBAY_REGISTRY`, else what `scripts/registry` unpacked.
    pub fn binary() -> Option<PathBuf> {
        crate::peer::installed(REGISTRY_ENV, "registry")
    }

    /// Starts a registry with `auth` and waits until it answers.
    pub async fn start(auth: Auth) -> io::Result<Self> {
        let binary = Self::binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the registry is not installed: run scripts/registry, or set {REGISTRY_ENV}"
                ),
            )
        })?;
        let port = free_port()?;
        let dir =
            std::env::temp_dir().join(format!("patchbay-registry-{port}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("storage"))?;
        let (auth_config, token_server) = match auth {
            Auth::Htpasswd(users) => {
                let mut file = String::new();
                for (user, password) in &users {
                    let hash = bcrypt::hash(password, 4).map_err(io::Error::other)?;
                    file.push_str(&format!("{user}:{hash}\n"));
                }
                std::fs::write(dir.join("htpasswd"), file)?;
                let path = dir.join("htpasswd");
                let config = format!(
                    "  htpasswd:\n    realm: patchbay-test\n    path: {}\n",
                    path.display()
                );
                (config, None)
            }
            Auth::Token(service) => {
                std::fs::write(dir.join("token-ca.pem"), service.certificate_pem())?;
                let server = service.clone().serve().await;
                // `localhost`, not 127.0.0.1: crane refuses a realm on a loopback or private
                // IP that is not the registry's own host and port.
                let realm = server.url().replace("127.0.0.1", "localhost");
                let config = format!(
                    "  token:\n    realm: {realm}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    dir.join("token-ca.pem").display()
                );
                (config, Some(server))
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: patchbay-test-secret\nauth:\n{auth_config}",
            dir.join("storage").display()
        );
        std::fs::write(dir.join("config.yml"), config)?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let child = Command::new(&binary)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let registry = Self {
            child,
            port,
            dir,
            token_server,
        };
        registry.wait_until_up().await?;
        Ok(registry)
    }

    async fn wait_until_up(&self) -> io::Result<()> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let log = std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default();
        Err(io::Error::other(format!(
            "the registry did not start: {log}"
        )))
    }

    /// `http://127.0.0.1:PORT`, as `spec.dockerRegistry.url` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`: the registry's key in a docker config and its image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The token service's URL, when the registry uses one.
    pub fn token_service_url(&self) -> Option<String> {
        self.token_server.as_ref().map(Server::url)
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A token service for the Docker token protocol: users and passwords, what each may do,
/// and the lifetime of the tokens it signs.
pub struct TokenService {
    key: EcdsaKeyPair,
    certificate_der: Vec<u8>,
    certificate_pem: String,
    users: Mutex<BTreeMap<String, String>>,
    /// Seconds a token lives (`expires_in`).
    expires_in: u64,
    issued: Mutex<Vec<String>>,
}

impl TokenService {
    /// A token service that signs in `users` and issues tokens living `expires_in`.
    pub fn new(users: &[(&str, &str)], expires_in: Duration) -> Arc<Self> {
        let key = rcgen::KeyPair::generate().expect("an ES256 key");
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("certificate parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ISSUER);
        let certificate = params.self_signed(&key).expect("a signing certificate");
        let pkcs8 = key.serialize_der();
        Arc::new(Self {
            key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                .expect("the key loads"),
            certificate_der: certificate.der().to_vec(),
            certificate_pem: certificate.pem(),
            users: Mutex::new(
                (users.iter())
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect(),
            ),
            expires_in: expires_in.as_secs(),
            issued: Mutex::default(),
        })
    }

    /// The certificate the registry trusts tokens from (its `rootcertbundle`).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Changes a user's password (a rotated login).
    pub fn set_password(&self, user: &str, password: &str) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.insert(user.to_string(), password.to_string());
    }

    /// The scopes of every token issued so far (`""` for a sign-in without scope), in order.
    pub fn issued(&self) -> Vec<String> {
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn serve(self: Arc<Self>) -> Server {
        let handler: Handler = Arc::new(move |asked| {
            if asked.path != "/token" {
                return Answer::json(404, json!({"details": "not found"}));
            }
            let known = asked.basic().is_some_and(|(user, password)| {
                let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
                users.get(&user) == Some(&password)
            });
            if !known {
                return Answer::json(401, json!({"details": "invalid username or password"}));
            }
            let (user, _) = asked.basic().unwrap_or_default();
            let scopes: Vec<&str> = (asked.query.iter())
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.as_str())
                .collect();
            let token = self.sign(&user, &scopes);
            (self.issued.lock().unwrap_or_else(|e| e.into_inner())).push(scopes.join(" "));
            Answer::json(
                200,
                json!({"token": token, "access_token": token, "expires_in": self.expires_in}),
            )
        });
        Server::start(handler).await
    }

    /// A JWT granting `user` every action of `scopes` (`repository:NAME:ACTIONS`).
    fn sign(&self, user: &str, scopes: &[&str]) -> String {
        let access: Vec<serde_json::Value> = (scopes.iter())
            .filter_map(|scope| {
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(json!({"type": kind, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = json!({"typ": "JWT", "alg": "ES256",
            "x5c": [STANDARD.encode(&self.certificate_der)]});
        let claims = json!({"iss": ISSUER, "sub": user, "aud": SERVICE,
            "exp": now + self.expires_in, "nbf": now.saturating_sub(5), "iat": now,
            "jti": format!("{now}-{}", scopes.len()), "access": access});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = (self.key)
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .expect("signing works");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}
