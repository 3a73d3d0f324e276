//! Refresh tokens: `lk_rt_` followed by 43 base64url characters (256 random bits). The prefix lets
//! secret scanners spot a leaked one. Only the SHA-256 of a token is stored; with 256 bits of
//! randomness no salt or slow hash is needed to make it irreversible.

use std::fmt;

use aws_lc_rs::{digest, rand::SecureRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::CryptoError;
use crate::domain::types::TokenHash;

const PREFIX: &str = "lk_rt_";
const RANDOM_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;

/// A well-formed refresh token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; RANDOM_BYTES];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CryptoError("no randomness".into()))?;
        Ok(Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// Accepts only the exact form, so garbage never reaches the database. `None` when malformed.
    pub fn parse(raw: &str) -> Option<Self> {
        let body = raw.strip_prefix(PREFIX)?;
        let decoded = (body.len() == ENCODED_LEN)
            .then(|| URL_SAFE_NO_PAD.decode(body))
            .and_then(Result::ok)?;
        (decoded.len() == RANDOM_BYTES).then(|| Self(raw.to_owned()))
    }

    /// Whether `raw` looks like one of ours at all (for `token_type_hint`-less dispatch).
    pub fn looks_like(raw: &str) -> bool {
        raw.starts_with(PREFIX)
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(
            digest::digest(&digest::SHA256, self.0.as_bytes())
                .as_ref()
                .to_vec(),
        )
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        Self::parse(std::str::from_utf8(&bytes).ok()?)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = RefreshToken::generate().unwrap();
        let b = RefreshToken::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("lk_rt_"));
        assert_eq!(a.expose().len(), 6 + 43);
        assert_eq!(RefreshToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.hash().0.len(), 32);
        assert!(!format!("{a:?}").contains(&a.expose()[6..]));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = RefreshToken::generate().unwrap();
        for bad in [
            "",
            "lk_rt_",
            "lk_rt_short",
            &good.expose()[6..],
            &format!("{}A", good.expose()),
            &format!("lk_at_{}", &good.expose()[6..]),
            &format!("{}!", &good.expose()[..48]),
            "eyJhbGciOiJFZERTQSJ9.e30.sig",
        ] {
            assert_eq!(RefreshToken::parse(bad), None, "{bad}");
        }
    }
}
