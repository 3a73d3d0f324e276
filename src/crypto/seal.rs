//! The master key and what it protects. Private signing keys at rest and the one refresh token per
//! session that a retry may need again are sealed with AES-256-GCM under keys derived from it, each
//! bound to its context by the associated data so a sealed value cannot be moved to another row.

use std::{fs, io::Write, path::Path};

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::STANDARD};

use super::CryptoError;
use crate::domain::secret::Secret;

const KEY_LEN: usize = 32;

/// 32 secret bytes shared by every replica of a deployment. `Debug` never shows them.
#[derive(Clone, Debug)]
pub struct MasterKey(Secret<[u8; KEY_LEN]>);

impl MasterKey {
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| CryptoError("the master key is not base64".into()))?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError("the master key must be 32 bytes".into()))?;
        Ok(Self(Secret::new(key)))
    }

    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| CryptoError("no randomness".into()))?;
        Ok(Self(Secret::new(key)))
    }

    /// Reads `path`, or creates it (mode 0600) with a new key. `Ok((key, true))` when generated.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), CryptoError> {
        let io =
            |e: std::io::Error| CryptoError(format!("master key file {}: {e}", path.display()));
        match fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Written whole to a file of our own, then linked into place: another process
                // never reads a half-written key, and a crash never leaves an empty one.
                let key = Self::generate()?;
                let mut suffix = [0u8; 8];
                SystemRandom::new()
                    .fill(&mut suffix)
                    .map_err(|_| CryptoError("no randomness".into()))?;
                let staging = path.with_extension(format!(
                    "tmp-{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(suffix)
                ));
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let written = options.open(&staging).and_then(|mut file| {
                    writeln!(file, "{}", STANDARD.encode(key.0.expose()))?;
                    file.sync_all()
                });
                let linked = written.and_then(|()| fs::hard_link(&staging, path));
                let _ = fs::remove_file(&staging);
                match linked {
                    Ok(()) => Ok((key, true)),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((
                        Self::from_base64(&fs::read_to_string(path).map_err(io)?)?,
                        false,
                    )),
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A key for one purpose, so that no two uses ever share key material.
    fn derive(&self, purpose: &str) -> [u8; KEY_LEN] {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, self.0.expose()),
            purpose.as_bytes(),
        );
        let mut out = [0u8; KEY_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub fn sealer(&self, purpose: &str) -> Sealer {
        let key = UnboundKey::new(&AES_256_GCM, &self.derive(purpose)).expect("a 32-byte AES key");
        Sealer(std::sync::Arc::new(LessSafeKey::new(key)))
    }
}

/// AES-256-GCM with random nonces: output is nonce ‖ ciphertext ‖ tag.
#[derive(Clone)]
pub struct Sealer(std::sync::Arc<LessSafeKey>);

impl Sealer {
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CryptoError("no randomness".into()))?;
        let mut out = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut out,
            )
            .map_err(|_| CryptoError("sealing failed".into()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let wrong =
            || CryptoError("a sealed value did not open: wrong master key or tampered data".into());
        if sealed.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(context), &mut body)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
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
    fn a_generated_key_file_is_read_back_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (a, generated) = MasterKey::load_or_generate(&path).unwrap();
        assert!(generated);
        let (b, generated) = MasterKey::load_or_generate(&path).unwrap();
        assert!(!generated);
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn a_master_key_must_be_32_bytes_of_base64() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(!format!("{:?}", MasterKey::generate().unwrap()).contains('='));
    }
}
