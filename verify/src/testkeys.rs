//! Keys and tokens for tests and benchmarks, made as latchkey makes them: a JWK with `alg` and a
//! thumbprint `kid`, tokens with `typ: at+jwt`. Compiled into the unit tests, and included by the
//! integration tests and the benchmark (`#[path]`): one copy of the signing code for all of them.

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    rsa::KeySize,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, jwk::Jwk, jwk::ThumbprintHash};
use serde_json::{Value, json};

pub const ISSUER: &str = "latchkey";
pub const AUDIENCE: &str = "latchkey";

/// A signing key and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

impl TestKey {
    pub fn generate(alg: Algorithm) -> Self {
        let rng = SystemRandom::new();
        let encoding = match alg {
            Algorithm::EdDSA => {
                EncodingKey::from_ed_der(Ed25519KeyPair::generate_pkcs8v1(&rng).unwrap().as_ref())
            }
            Algorithm::ES256 => EncodingKey::from_ec_der(
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap()
                    .as_ref(),
            ),
            Algorithm::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
                let der = STANDARD.encode(AsDer::as_der(&pair).unwrap().as_ref());
                let pem =
                    format!("-----BEGIN PRIVATE KEY-----\n{der}\n-----END PRIVATE KEY-----\n");
                EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
            }
            other => panic!("latchkey does not sign with {other:?}"),
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
        jwk.common.key_id = Some(kid.clone());
        Self {
            kid,
            alg,
            encoding,
            jwk,
        }
    }

    /// The header latchkey puts on its access tokens.
    pub fn header(&self) -> Header {
        let mut header = Header::new(self.alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        header
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(&self.header(), claims)
    }

    pub fn sign_with(&self, header: &Header, claims: &Value) -> String {
        encode(header, claims, &self.encoding).unwrap()
    }
}

/// The JWK Set publishing `keys`, as GetJwks answers it.
pub fn jwks(keys: &[&TestKey]) -> String {
    let keys: Vec<&Jwk> = keys.iter().map(|k| &k.jwk).collect();
    json!({ "keys": keys }).to_string()
}

/// The claims latchkey issues, at Unix second `now`, for 15 minutes.
pub fn claims(now: i64) -> Value {
    json!({
        "iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "exp": now + 900, "iat": now, "nbf": now,
        "jti": "jti-1", "sid": "session-1", "scope": "read write", "client_id": "default",
    })
}
