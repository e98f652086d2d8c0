//! How provider calls reach their servers from enterprise networks: which certificate
//! authorities they trust and which proxy they go through.
//!
//! Every provider HTTP client (reqwest for GitHub, the AWS SDK's for STS, ECR and IAM) is built
//! here, so that all of them:
//! - trust the system's roots, the operator's `--extra-ca-bundle`, and the calling
//!   Connection's own `spec.caBundle` (and no other Connection's);
//! - go through `HTTPS_PROXY` / `HTTP_PROXY` unless `NO_PROXY` names the host.
//!
//! Clients are cached per bundle, so that calls with the same trust share a connection pool.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use sha2::{Digest, Sha256};

use super::ProviderError;
use crate::conditions::reasons;

/// The largest CA bundle accepted (a Connection's, or the operator's).
pub const MAX_BUNDLE: usize = 512 * 1024;

/// PEM CA certificates that a Connection's calls trust besides the system's and the operator's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaBundle {
    pem: Vec<u8>,
}

impl CaBundle {
    /// The certificates in `pem`, checked: at least one certificate, each parseable. `source`
    /// names where the PEM came from, for the error.
    pub fn parse(pem: &[u8], source: &str) -> Result<Self, ProviderError> {
        let invalid = |why: String| {
            ProviderError::transient(
                reasons::INVALID_CA_BUNDLE,
                format!(
                    "{source}: {why}; it must hold PEM certificates (-----BEGIN CERTIFICATE-----)"
                ),
            )
        };
        if pem.len() > MAX_BUNDLE {
            return Err(invalid(format!(
                "{} bytes, more than {MAX_BUNDLE}",
                pem.len()
            )));
        }
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|_| invalid("not a PEM certificate bundle".into()))?;
        if certificates.is_empty() {
            return Err(invalid("no certificate in it".into()));
        }
        Ok(Self { pem: pem.to_vec() })
    }

    fn digest(&self) -> String {
        hex::encode(Sha256::digest(&self.pem))
    }
}

/// The process's network settings: set once by `patchbay run` (like rustls's default crypto
/// provider), read by every provider client.
static PROCESS: OnceLock<Network> = OnceLock::new();

/// Makes `network` the process's (its `--extra-ca-bundle`); `false` when one was already set.
pub fn install(network: Network) -> bool {
    PROCESS.set(network).is_ok()
}

/// The process's network: what [`install`] set, else the system's roots and the proxy only.
pub fn process() -> &'static Network {
    PROCESS.get_or_init(Network::default)
}

/// The clients of provider calls, per trusted bundle.
#[derive(Default)]
pub struct Network {
    /// The operator's extra bundle (`--extra-ca-bundle`), trusted by every call.
    extra: Option<CaBundle>,
    http: Mutex<HashMap<String, reqwest::Client>>,
    aws: Mutex<HashMap<String, SharedHttpClient>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("extra_ca_bundle", &self.extra.is_some())
            .finish_non_exhaustive()
    }
}

/// The key a client is cached under: the bundles it trusts.
fn key(bundles: &[&CaBundle]) -> String {
    bundles
        .iter()
        .map(|b| b.digest())
        .collect::<Vec<_>>()
        .join("+")
}

impl Network {
    /// Provider calls that also trust `extra` (the operator's `--extra-ca-bundle`).
    pub fn with_extra_bundle(extra: CaBundle) -> Self {
        Self {
            extra: Some(extra),
            ..Self::default()
        }
    }

    fn bundles<'a>(&'a self, connection: Option<&'a CaBundle>) -> Vec<&'a CaBundle> {
        self.extra.iter().chain(connection).collect()
    }

    /// A reqwest client from `builder` (timeouts, redirects, user agent) that trusts the
    /// system's roots, the operator's bundle and `connection`'s, through the environment's proxy.
    pub fn http(
        &self,
        connection: Option<&CaBundle>,
        builder: impl FnOnce() -> reqwest::ClientBuilder,
    ) -> Result<reqwest::Client, ProviderError> {
        let bundles = self.bundles(connection);
        let key = key(&bundles);
        let mut cache = self.http.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = cache.get(&key) {
            return Ok(client.clone());
        }
        let mut certificates = Vec::new();
        for bundle in &bundles {
            // Parsed before (CaBundle::parse); a failure here is not the user's to fix.
            certificates
                .extend(reqwest::Certificate::from_pem_bundle(&bundle.pem).unwrap_or_default());
        }
        // reqwest reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY itself.
        let client = builder()
            .tls_certs_merge(certificates)
            .build()
            .map_err(|e| {
                ProviderError::transient(
                    reasons::INVALID_CA_BUNDLE,
                    format!("cannot build an HTTP client with the CA bundles: {e}"),
                )
            })?;
        cache.insert(key, client.clone());
        Ok(client)
    }

    /// The AWS SDK's HTTP client (rustls with aws-lc) that trusts the system's roots, the
    /// operator's bundle and `connection`'s, through the environment's proxy.
    pub fn aws(&self, connection: Option<&CaBundle>) -> SharedHttpClient {
        let bundles = self.bundles(connection);
        let key = key(&bundles);
        let mut cache = self.aws.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = cache.get(&key) {
            return client.clone();
        }
        let mut trust = TrustStore::default().with_native_roots(true);
        for bundle in &bundles {
            trust = trust.with_pem_certificate(bundle.pem.clone());
        }
        let context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .unwrap_or_default();
        let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut connector = aws_smithy_http_client::Connector::builder()
                    .proxy_config(ProxyConfig::from_env());
                if let Some(settings) = settings {
                    connector = connector.connector_settings(settings.clone());
                }
                if let Some(sleep) = components.and_then(|c| c.sleep_impl()) {
                    connector = connector.sleep_impl(sleep);
                }
                connector
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .tls_context(context.clone())
                    .build()
            },
        );
        cache.insert(key, client.clone());
        client
    }
}

/// Whether a transport failure's text says the server's certificate was not trusted.
pub fn is_certificate_failure(cause: &str) -> bool {
    let cause = cause.to_ascii_lowercase();
    [
        "unknownissuer",
        "invalid peer certificate",
        "certificate verify failed",
        "self signed",
        "self-signed",
        "badsignature",
        "notvalidforname",
        "unknown ca",
    ]
    .iter()
    .any(|marker| cause.contains(marker))
}

/// The error for a server whose certificate no trusted CA signed: what to add, and where.
pub fn certificate_not_trusted(server: &str, cause: &str) -> ProviderError {
    ProviderError::transient(
        reasons::CERTIFICATE_NOT_TRUSTED,
        format!(
            "the TLS certificate of {server} is not signed by a CA patchbay trusts ({cause}); add \
             the issuing CA's PEM to the Connection's spec.caBundle (a ConfigMap or Secret key in \
             its namespace), or to the operator's --extra-ca-bundle"
        ),
    )
}
