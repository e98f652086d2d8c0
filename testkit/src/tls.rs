//! A private certificate authority for tests: servers behind a certificate that no public CA
//! issued, as GitHub Enterprise and GitLab often are inside companies.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA that issues server certificates for `127.0.0.1` and `localhost`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    /// A new CA with a fresh key.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).expect("a self-signed CA");
        let pem = certificate.pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// The CA certificate, PEM: what a client must trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A rustls server configuration with a certificate this CA issued for `127.0.0.1` and
    /// `localhost`.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().expect("a server key");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let params = CertificateParams::new(names).expect("server parameters");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        let chain = vec![CertificateDer::from(certificate.der().to_vec())];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .expect("a server configuration");
        Arc::new(config)
    }
}
