//! The master key and what it protects. Private signing keys at rest and the one refresh token per
//! session that a retry may need again are sealed with AES-256-GCM, bound to their context (a
//! session and generation, or a signing key's id) so a sealed value cannot be moved to another row.
//!
//! Format 1, written now: `lks` ‖ version `0x01` ‖ nonce (12) ‖ ciphertext ‖ tag (16), under a key
//! derived by HKDF-SHA256 from the master key for this purpose and this context, with the context
//! as associated data. Each derived key seals a handful of values in its life, far below the 2^32
//! messages that random 96-bit nonces allow one GCM key. The version byte leaves room to rotate the
//! master key later.
//!
//! Format 0, written by earlier releases and still opened: nonce ‖ ciphertext ‖ tag under one key
//! per purpose (HMAC-SHA256 of the purpose under the master key), with no header. Its first bytes
//! are its random nonce, so one value in 2^32 starts with the format-1 header by chance; it still
//! opens, because a value read in the wrong format fails authentication (a forgery chance of
//! 2^-128) and the other format is tried next. No value is ever misread, whatever its bytes.

use std::sync::Arc;

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hkdf, hmac,
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use zeroize::Zeroizing;

use super::CryptoError;
use crate::domain::secret::Secret;

const KEY_LEN: usize = 32;
/// In front of every value sealed by this release: a magic, then the format version.
const HEADER: [u8; 4] = *b"lks\x01";
/// HKDF's salt: fixed, naming the scheme, so these keys differ from any other use of the master key.
const HKDF_SALT: &[u8] = b"latchkey sealing, format 1";

/// 32 secret bytes shared by every replica of a deployment. `Debug` never shows them, and they are
/// wiped from memory when the key is dropped.
#[derive(Clone, Debug)]
pub struct MasterKey(Secret<Zeroizing<[u8; KEY_LEN]>>);

impl MasterKey {
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(encoded.trim())
                .map_err(|_| CryptoError("the master key is not base64".into()))?,
        );
        if bytes.len() != KEY_LEN {
            return Err(CryptoError("the master key must be 32 bytes".into()));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&bytes);
        Ok(Self(Secret::new(key)))
    }

    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(key.as_mut())
            .map_err(|_| CryptoError("no randomness".into()))?;
        Ok(Self(Secret::new(key)))
    }

    /// The key as its file holds it.
    pub(super) fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.expose().as_ref()))
    }

    /// The format-0 key of a purpose, so that no two uses ever shared key material.
    fn legacy_key(&self, purpose: &str) -> LessSafeKey {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, self.0.expose().as_ref()),
            purpose.as_bytes(),
        );
        let key = UnboundKey::new(&AES_256_GCM, tag.as_ref()).expect("a 32-byte AES key");
        LessSafeKey::new(key)
    }

    /// What seals and opens the values of one purpose (no purpose contains a zero byte).
    pub fn sealer(&self, purpose: &str) -> Sealer {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(self.0.expose().as_ref());
        Sealer(Arc::new(Keys {
            purpose: purpose.to_owned(),
            prk,
            legacy: self.legacy_key(purpose),
        }))
    }
}

struct Keys {
    purpose: String,
    /// HKDF's pseudorandom key, from which each context's key is expanded.
    prk: hkdf::Prk,
    legacy: LessSafeKey,
}

/// Seals and opens the values of one purpose (see the module documentation for the formats).
#[derive(Clone)]
pub struct Sealer(Arc<Keys>);

impl Sealer {
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CryptoError("no randomness".into()))?;
        let mut sealed = Vec::with_capacity(HEADER.len() + NONCE_LEN + plaintext.len() + 16);
        sealed.extend_from_slice(&HEADER);
        sealed.extend_from_slice(&nonce);
        let body = sealed.len();
        sealed.extend_from_slice(plaintext);
        let tag = self
            .key_for(context)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut sealed[body..],
            )
            .map_err(|_| CryptoError("sealing failed".into()))?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if let Some(body) = sealed.strip_prefix(&HEADER)
            && let Some(plain) = open_with(&self.key_for(context)?, body, context)
        {
            return Ok(plain);
        }
        open_with(&self.0.legacy, sealed, context).ok_or_else(|| {
            CryptoError("a sealed value did not open: wrong master key or tampered data".into())
        })
    }

    /// The format-1 key of `context`: HKDF-Expand over purpose ‖ 0 ‖ context.
    fn key_for(&self, context: &[u8]) -> Result<LessSafeKey, CryptoError> {
        let info = [self.0.purpose.as_bytes(), &[0], context];
        let okm = self
            .0
            .prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| CryptoError("key derivation failed".into()))?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

/// nonce ‖ ciphertext ‖ tag opened under `key`; `None` when it does not authenticate.
fn open_with(key: &LessSafeKey, body: &[u8], context: &[u8]) -> Option<Vec<u8>> {
    if body.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = body.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = ciphertext.to_vec();
    let len = key
        .open_in_place(nonce, Aad::from(context), &mut buffer)
        .ok()?
        .len();
    buffer.truncate(len);
    Some(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context_and_under_their_key() {
        let key = MasterKey::generate().unwrap();
        let s = key.sealer("test");
        let sealed = s.seal(b"secret", b"row 1").unwrap();
        assert_eq!(s.open(&sealed, b"row 1").unwrap(), b"secret");
        assert!(s.open(&sealed, b"row 2").is_err());
        assert!(key.sealer("other").open(&sealed, b"row 1").is_err());
        assert!(
            MasterKey::generate()
                .unwrap()
                .sealer("test")
                .open(&sealed, b"row 1")
                .is_err()
        );
        assert!(s.open(&sealed[..5], b"row 1").is_err());
    }

    #[test]
    fn values_carry_the_version_header_and_each_context_has_its_own_key() {
        let s = MasterKey::generate().unwrap().sealer("test");
        let sealed = s.seal(b"secret", b"session/2").unwrap();
        assert_eq!(sealed[..4], *b"lks\x01");
        assert_eq!(sealed.len(), 4 + NONCE_LEN + 6 + 16);
        let body = &sealed[4..];
        let own = s.key_for(b"session/2").unwrap();
        assert_eq!(open_with(&own, body, b"session/2").unwrap(), b"secret");
        let other = s.key_for(b"session/3").unwrap();
        assert!(
            open_with(&other, body, b"session/2").is_none(),
            "same associated data, another context's key"
        );
        assert!(
            open_with(&s.0.legacy, body, b"session/2").is_none(),
            "not the purpose-wide key"
        );
    }

    /// Sealed by the release before format 1, under the key of 32 bytes 42.
    #[test]
    fn values_sealed_by_earlier_releases_still_open() {
        let key = MasterKey::from_base64(&STANDARD.encode([42u8; 32])).unwrap();
        let token = STANDARD
            .decode("BhU0+sWTLYzLB9z6zO6djO6p0Nhadet7R6eESS5MWRALvirVSVAaOroR5x5ffBa/5mu9R8Rv84eB")
            .unwrap();
        let opened = key.sealer("refresh-tokens").open(&token, b"session-1/2");
        assert_eq!(opened.unwrap(), b"lk_rt_legacy-sealed-successor");
        let signing = STANDARD
            .decode("CwpId9CirB4//7ypGUGB0rdMH8WC1HOhMhOVzKwzhYYCGIWvXNx9")
            .unwrap();
        let opened = key.sealer("signing-keys").open(&signing, b"kid-1");
        assert_eq!(opened.unwrap(), b"pkcs8 bytes");
        assert!(key.sealer("signing-keys").open(&signing, b"kid-2").is_err());
    }

    #[test]
    fn an_earlier_value_whose_nonce_starts_like_the_header_still_opens() {
        let s = MasterKey::generate().unwrap().sealer("test");
        let mut nonce = [7u8; NONCE_LEN];
        nonce[..4].copy_from_slice(&HEADER);
        let mut body = b"secret".to_vec();
        let n = Nonce::assume_unique_for_key(nonce);
        s.0.legacy
            .seal_in_place_append_tag(n, Aad::from(b"ctx"), &mut body)
            .unwrap();
        let legacy = [&nonce[..], &body].concat();
        assert_eq!(s.open(&legacy, b"ctx").unwrap(), b"secret");
    }

    #[test]
    fn a_master_key_must_be_32_bytes_of_base64() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(!format!("{:?}", MasterKey::generate().unwrap()).contains('='));
    }
}
