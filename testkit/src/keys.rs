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

    /// The private key as PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), the form GitHub hands
    /// out for App keys.
    pub fn private_pkcs1_pem(&self) -> String {
        let pkcs8 = pem::parse(&self.private_pkcs8_pem).expect("own PEM parses");
        let pkcs1 = pkcs1_from_pkcs8(pkcs8.contents()).expect("own PKCS#8 wraps PKCS#1");
        pem::encode(&pem::Pem::new("RSA PRIVATE KEY", pkcs1.to_vec()))
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER, for verifying signatures.
    pub fn public_pkcs1_der(&self) -> &[u8] {
        &self.public_der
    }
}

/// Splits one DER element off `der`: (tag, contents, rest).
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        let (bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
        (
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`
/// (SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING, ... }).
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<&[u8]> {
    let (0x30, info, _) = der_element(der)? else {
        return None;
    };
    let (0x02, _, rest) = der_element(info)? else {
        return None;
    };
    let (0x30, _, rest) = der_element(rest)? else {
        return None;
    };
    let (0x04, key, _) = der_element(rest)? else {
        return None;
    };
    Some(key)
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

    #[test]
    fn the_pkcs1_form_is_an_rsa_private_key_pem() {
        let key = RsaKey::generate();
        let pem = key.private_pkcs1_pem();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let der = pem::parse(&pem).unwrap();
        // RSAPrivateKey starts with SEQUENCE { INTEGER 0 (two-prime version), ... }.
        let (tag, body, _) = der_element(der.contents()).unwrap();
        assert_eq!(tag, 0x30);
        assert_eq!(&body[..3], &[0x02, 0x01, 0x00]);
    }
}
