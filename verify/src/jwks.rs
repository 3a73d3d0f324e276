//! The keys latchkey publishes (an RFC 7517 JWK Set), each held with the one algorithm its JWK
//! names and a `Validation` built once (building one per call would cost allocations on the hot
//! path). Keys that cannot sign access tokens as latchkey does are left out: a JWK without `alg`,
//! symmetric (`oct`, HS*) keys, and keys marked for encryption.

use std::{collections::HashMap, sync::Arc};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, JwkSet, PublicKeyUse},
};

/// What a token must match besides its signature.
#[derive(Debug, Clone)]
pub(crate) struct Expectations {
    pub issuer: String,
    pub audience: String,
}

/// One verification key.
pub(crate) struct Key {
    pub decoding: DecodingKey,
    pub validation: Validation,
}

/// The usable keys of one JWK Set, by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<Key>>,
}

impl KeySet {
    /// Parses a JWK Set; a malformed document is an error, an unusable key is skipped.
    pub(crate) fn parse(json: &str, expect: &Expectations) -> Result<Self, serde_json::Error> {
        let set: JwkSet = serde_json::from_str(json)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(key_alg)) = (&jwk.common.key_id, jwk.common.key_algorithm) else {
                continue;
            };
            let Ok(alg) = Algorithm::try_from(key_alg) else {
                continue;
            };
            let symmetric = matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
                || matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
            let for_encryption =
                matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
            if symmetric || for_encryption {
                continue;
            }
            let Ok(decoding) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let validation = validation(alg, expect);
            keys.insert(
                kid.clone(),
                Arc::new(Key {
                    decoding,
                    validation,
                }),
            );
        }
        Ok(Self { keys })
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&Arc<Key>> {
        self.keys.get(kid)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether every key of `self` is still in `newer`: when one is gone, tokens it signed must no
    /// longer verify, cached or not.
    pub(crate) fn all_kept_in(&self, newer: &KeySet) -> bool {
        self.keys.keys().all(|kid| newer.keys.contains_key(kid))
    }
}

/// Introspect's rules as jsonwebtoken checks them: only the key's algorithm, the required claims,
/// issuer and audience. Time is checked by the caller against its own clock, with its leeway.
fn validation(alg: Algorithm, expect: &Expectations) -> Validation {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub", "jti"]);
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);
    validation
}
