//! Signing keys: generated here, stored as PKCS#8 sealed under the master key, published as JWKs
//! that carry only public members. A key's id is its RFC 7638 thumbprint.

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    rsa::{KeyPair as RsaKeyPair, KeySize},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    jwk::{Jwk, PublicKeyUse, ThumbprintHash},
};

use super::CryptoError;
use crate::domain::secret::Secret;

/// The signing algorithms latchkey can issue with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    EdDsa,
    Es256,
    Rs256,
}

impl SigningAlg {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "EdDSA" => Ok(Self::EdDsa),
            "ES256" => Ok(Self::Es256),
            "RS256" => Ok(Self::Rs256),
            "HS256" => Err(
                "HS256 is not offered: a shared secret would let every verifier mint tokens".into(),
            ),
            other => Err(format!(
                "unknown signing algorithm {other:?} (EdDSA, ES256 or RS256)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
        }
    }

    /// A new private key as PKCS#8 DER.
    pub fn generate_pkcs8(self) -> Result<Vec<u8>, CryptoError> {
        let fail = |_| CryptoError(format!("generating a {} key failed", self.name()));
        let rng = SystemRandom::new();
        Ok(match self {
            Self::EdDsa => Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            Self::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            Self::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(fail)?
                .as_der()
                .map_err(fail)?
                .as_ref()
                .to_vec(),
        })
    }
}

/// A usable key: both halves prepared once, and its public JWK. `Debug` leaves the private half out.
#[derive(Debug)]
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub(crate) private: Secret<PrivateKey>,
    pub decoding: DecodingKey,
    pub jwk: Jwk,
}

/// A private key, parsed once. (jsonwebtoken's `EncodingKey` keeps the PKCS#8 bytes and parses them
/// again for every token it signs, which for Ed25519 derives the public key anew each time.)
pub(crate) enum PrivateKey {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl PrivateKey {
    fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, CryptoError> {
        let bad = |_| CryptoError(format!("unusable {} key", alg.name()));
        Ok(match alg {
            SigningAlg::EdDsa => Self::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(bad)?),
            SigningAlg::Es256 => Self::EcdsaP256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?,
            ),
            SigningAlg::Rs256 => Self::Rsa(RsaKeyPair::from_pkcs8(der).map_err(bad)?),
        })
    }

    /// The signature of `message` as JWS puts it (RFC 7518 §3: ES256 as `r || s`, 64 bytes).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let failed = |_| CryptoError("signing failed".into());
        match self {
            Self::Ed25519(key) => Ok(key.sign(message).as_ref().to_vec()),
            Self::EcdsaP256(key) => key
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(failed),
            Self::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

impl SigningKey {
    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, CryptoError> {
        let bad = |e: jsonwebtoken::errors::Error| {
            CryptoError(format!("unusable {} key: {e}", alg.name()))
        };
        let encoding = match alg {
            SigningAlg::EdDsa => EncodingKey::from_ed_der(der),
            SigningAlg::Es256 => EncodingKey::from_ec_der(der),
            SigningAlg::Rs256 => {
                let pem = format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    STANDARD.encode(der)
                );
                EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(bad)?
            }
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt()).map_err(bad)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(bad)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
        Ok(Self {
            kid,
            alg,
            private: Secret::new(PrivateKey::from_pkcs8(alg, der)?),
            decoding,
            jwk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_key_whose_jwk_is_public_only() {
        for alg in [SigningAlg::EdDsa, SigningAlg::Es256, SigningAlg::Rs256] {
            let key = SigningKey::from_pkcs8(alg, &alg.generate_pkcs8().unwrap()).unwrap();
            let json = serde_json::to_value(&key.jwk).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(json.get(private).is_none(), "{alg:?} JWK leaks {private}");
            }
            assert_eq!(json["kid"], key.kid.as_str());
            assert_eq!(json["alg"], alg.name());
            assert_eq!(json["use"], "sig");
        }
    }

    #[test]
    fn hs256_and_unknown_names_are_refused() {
        assert!(SigningAlg::parse("HS256").is_err());
        assert!(SigningAlg::parse("none").is_err());
        assert_eq!(SigningAlg::parse("ES256"), Ok(SigningAlg::Es256));
    }
}
