//! App JWTs (decoding, RS256 verification, GitHub's claim rules, and signing for tests) and the
//! `Authorization` header.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::UnparsedPublicKey;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::HeaderMap;
use serde_json::{Map, Value, json};

use super::reply::Reply;

/// GitHub tolerates this much clock drift on `iat`.
pub(crate) const CLOCK_DRIFT_SECS: i64 = 60;
/// An App JWT lives at most ten minutes.
pub(crate) const MAX_JWT_LIFETIME_SECS: i64 = 600;

/// Why GitHub refuses an App JWT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JwtError {
    /// Not three base64url segments of JSON, not RS256, or a bad signature.
    Undecodable,
    MissingIssuer,
    IssuerNotInteger,
    /// `iss` names no app: 404, the only non-401.
    UnknownApp,
    IssuedAt,
    Expiration,
    ExpirationTooFar,
}

impl JwtError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Undecodable => "A JSON web token could not be decoded",
            Self::MissingIssuer => "Missing 'issuer' claim ('iss') in assertion",
            Self::IssuerNotInteger => "'Issuer' claim ('iss') must be an Integer",
            Self::UnknownApp => "Integration not found",
            Self::IssuedAt => {
                "'Issued at' claim ('iat') must be an Integer representing the time that the \
                 assertion was issued"
            }
            Self::Expiration => {
                "'Expiration time' claim ('exp') must be a numeric value representing the \
                 future time at which the assertion expires"
            }
            Self::ExpirationTooFar => "'Expiration time' claim ('exp') is too far in the future",
        }
    }

    pub(crate) fn reply(self) -> Reply {
        let status = if self == Self::UnknownApp { 404 } else { 401 };
        Reply::error(status, self.message())
    }
}

/// Who the JWT says it is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Issuer {
    AppId(u64),
    ClientId(String),
}

/// A structurally valid JWT, not yet verified.
pub(crate) struct Jwt {
    signing_input: String,
    signature: Vec<u8>,
    claims: Map<String, Value>,
}

fn segment_json(segment: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Undecodable)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Undecodable)
}

impl Jwt {
    /// Splits and decodes a compact JWS; only RS256 is accepted, as on GitHub.
    pub(crate) fn decode(token: &str) -> Result<Self, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Undecodable);
        };
        let alg = segment_json(header)?;
        if alg.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(JwtError::Undecodable);
        }
        let Value::Object(claims) = segment_json(payload)? else {
            return Err(JwtError::Undecodable);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Undecodable)?;
        Ok(Self {
            signing_input: format!("{header}.{payload}"),
            signature,
            claims,
        })
    }

    /// The `iss` claim: a numeric App ID (integer or digits) or a client ID (`Iv…`).
    pub(crate) fn issuer(&self) -> Result<Issuer, JwtError> {
        match self.claims.get("iss") {
            None | Some(Value::Null) => Err(JwtError::MissingIssuer),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Issuer::AppId)
                .ok_or(JwtError::IssuerNotInteger),
            Some(Value::String(s)) if s.starts_with("Iv") => Ok(Issuer::ClientId(s.clone())),
            Some(Value::String(s)) => s
                .parse()
                .map(Issuer::AppId)
                .map_err(|_| JwtError::IssuerNotInteger),
            Some(_) => Err(JwtError::IssuerNotInteger),
        }
    }

    fn integer_claim(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }

    /// Checks the signature against the app's key, then `iat` and `exp` against `now`.
    pub(crate) fn verify(&self, public_key_der: &[u8], now: i64) -> Result<(), JwtError> {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_der)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwtError::Undecodable)?;
        let iat = self.integer_claim("iat").ok_or(JwtError::IssuedAt)?;
        let exp = self.integer_claim("exp").ok_or(JwtError::Expiration)?;
        if iat > now + CLOCK_DRIFT_SECS {
            return Err(JwtError::IssuedAt);
        }
        if exp <= now {
            return Err(JwtError::Expiration);
        }
        if exp.saturating_sub(iat) > MAX_JWT_LIFETIME_SECS || exp > now + MAX_JWT_LIFETIME_SECS {
            return Err(JwtError::ExpirationTooFar);
        }
        Ok(())
    }
}

/// The `Authorization` header as `(lower-cased scheme, credential)`.
pub(crate) fn credential(headers: &HeaderMap) -> Option<(String, &str)> {
    let value = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    (!rest.is_empty()).then(|| (scheme.to_ascii_lowercase(), rest))
}

/// Why a JWT could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The PEM text did not parse.
    #[error("the private key is not PEM")]
    Pem,
    /// The PEM held no usable RSA key.
    #[error("the private key is not an RSA key")]
    Key,
    /// The crypto backend refused to sign.
    #[error("RSA signing failed")]
    Sign,
}

/// Signs arbitrary claims as an RS256 JWT with a PEM RSA key (PKCS#8 `PRIVATE KEY` or PKCS#1
/// `RSA PRIVATE KEY`), so tests can also craft invalid claims (float `iat`, missing `exp`, ...).
pub fn sign_jwt(private_pkcs8_pem: &str, claims: &Value) -> Result<String, SignError> {
    let pem = pem::parse(private_pkcs8_pem).map_err(|_| SignError::Pem)?;
    let key = RsaKeyPair::from_pkcs8(pem.contents())
        .or_else(|_| RsaKeyPair::from_der(pem.contents()))
        .map_err(|_| SignError::Key)?;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| SignError::Sign)?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// A well-formed App JWT as GitHub recommends: `iat` a minute in the past, `exp` nine minutes
/// ahead of `now` (Unix seconds), `iss` the numeric App ID.
pub fn app_jwt(private_pkcs8_pem: &str, app_id: u64, now: i64) -> Result<String, SignError> {
    sign_jwt(
        private_pkcs8_pem,
        &json!({"iat": now - 60, "exp": now + 540, "iss": app_id}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::RsaKey;

    const NOW: i64 = 1_700_000_000;

    fn check(key: &RsaKey, claims: Value) -> Result<Issuer, JwtError> {
        let token = sign_jwt(key.private_pkcs8_pem(), &claims).expect("signed");
        let jwt = Jwt::decode(&token)?;
        let issuer = jwt.issuer()?;
        jwt.verify(key.public_pkcs1_der(), NOW)?;
        Ok(issuer)
    }

    #[test]
    fn githubs_rules_for_app_jwts() {
        let key = RsaKey::generate();
        let cases = [
            (
                "a recommended token passes",
                json!({"iat": NOW - 60, "exp": NOW + 540, "iss": 7}),
                Ok(Issuer::AppId(7)),
            ),
            (
                "a string app id passes",
                json!({"iat": NOW, "exp": NOW + 600, "iss": "7"}),
                Ok(Issuer::AppId(7)),
            ),
            (
                "a client id passes",
                json!({"iat": NOW, "exp": NOW + 60, "iss": "Iv1.abc"}),
                Ok(Issuer::ClientId("Iv1.abc".into())),
            ),
            (
                "iat within the drift passes",
                json!({"iat": NOW + 60, "exp": NOW + 120, "iss": 7}),
                Ok(Issuer::AppId(7)),
            ),
            (
                "a missing iss",
                json!({"iat": NOW, "exp": NOW + 60}),
                Err(JwtError::MissingIssuer),
            ),
            (
                "a non-numeric iss",
                json!({"iat": NOW, "exp": NOW + 60, "iss": "app!"}),
                Err(JwtError::IssuerNotInteger),
            ),
            (
                "a missing iat",
                json!({"exp": NOW + 60, "iss": 7}),
                Err(JwtError::IssuedAt),
            ),
            (
                "a float iat",
                json!({"iat": NOW as f64 + 0.5, "exp": NOW + 60, "iss": 7}),
                Err(JwtError::IssuedAt),
            ),
            (
                "an iat beyond the drift",
                json!({"iat": NOW + 61, "exp": NOW + 120, "iss": 7}),
                Err(JwtError::IssuedAt),
            ),
            (
                "a missing exp",
                json!({"iat": NOW, "iss": 7}),
                Err(JwtError::Expiration),
            ),
            (
                "a string exp",
                json!({"iat": NOW, "exp": "soon", "iss": 7}),
                Err(JwtError::Expiration),
            ),
            (
                "an expired token",
                json!({"iat": NOW - 600, "exp": NOW, "iss": 7}),
                Err(JwtError::Expiration),
            ),
            (
                "a lifetime over ten minutes",
                json!({"iat": NOW - 120, "exp": NOW + 540, "iss": 7}),
                Err(JwtError::ExpirationTooFar),
            ),
            (
                "an iat at the start of time",
                json!({"iat": i64::MIN, "exp": NOW + 60, "iss": 7}),
                Err(JwtError::ExpirationTooFar),
            ),
            (
                "an exp over ten minutes from now",
                json!({"iat": NOW + 30, "exp": NOW + 601, "iss": 7}),
                Err(JwtError::ExpirationTooFar),
            ),
        ];
        for (name, claims, want) in cases {
            assert_eq!(check(&key, claims), want, "{name}");
        }
    }

    #[test]
    fn a_pkcs1_key_signs_too() {
        let key = RsaKey::generate();
        let token = app_jwt(&key.private_pkcs1_pem(), 7, NOW).expect("signed");
        let jwt = Jwt::decode(&token).expect("well-formed");
        assert_eq!(jwt.verify(key.public_pkcs1_der(), NOW), Ok(()));
    }

    #[test]
    fn a_token_signed_by_another_key_cannot_be_decoded() {
        let (key, other) = (RsaKey::generate(), RsaKey::generate());
        let token = app_jwt(other.private_pkcs8_pem(), 7, NOW).expect("signed");
        let jwt = Jwt::decode(&token).expect("well-formed");
        assert_eq!(
            jwt.verify(key.public_pkcs1_der(), NOW),
            Err(JwtError::Undecodable)
        );
    }

    #[test]
    fn garbage_and_other_algorithms_cannot_be_decoded() {
        let hs256 = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"iss":7}"#)
        );
        for token in ["ghs_notajwt", "a.b.c", "a.b.c.d", "", hs256.as_str()] {
            assert_eq!(
                Jwt::decode(token).err(),
                Some(JwtError::Undecodable),
                "{token}"
            );
        }
    }

    #[test]
    fn an_unknown_app_is_a_404_and_everything_else_a_401() {
        assert_eq!(JwtError::UnknownApp.reply().status, 404);
        assert_eq!(JwtError::Expiration.reply().status, 401);
    }
}
