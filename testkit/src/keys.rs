//! Throwaway key material for tests and the sandbox: generated per run, never committed.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;

/// A freshly generated 2048-bit RSA key pair, as a GitHub App's private key would be.
pub struct RsaKey {
    private_pkcs8_pem: String,
    public_der: Vec<u8>,
}

impl RsaKey {
    /// Generates a new key pair.
    pub fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let der = pair.as_der().expect("PKCS#8 encoding of a generated key");
        let private_pkcs8_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        let public_der = pair.public_key().as_ref().to_vec();
        Self {
            private_pkcs8_pem,
            public_der,
        }
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn private_pkcs8_pem(&self) -> &str {
        &self.private_pkcs8_pem
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER, for verifying signatures.
    pub fn public_pkcs1_der(&self) -> &[u8] {
        &self.public_der
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_pkcs8_pem() {
        let key = RsaKey::generate();
        assert!(
            key.private_pkcs8_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(!key.public_pkcs1_der().is_empty());
    }
}
