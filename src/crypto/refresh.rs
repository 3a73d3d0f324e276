//! Making refresh tokens: 256 random bits in the format of [`RefreshToken`], and the SHA-256 under
//! which the store keeps them. Only the hash is stored; with 256 bits of randomness no salt or slow
//! hash is needed to make it irreversible.

use aws_lc_rs::{digest, rand::SecureRandom};

use super::CryptoError;
use crate::domain::{
    token::{RANDOM_BYTES, RefreshToken},
    types::TokenHash,
};

/// A new refresh token.
pub fn generate() -> Result<RefreshToken, CryptoError> {
    let mut bytes = [0u8; RANDOM_BYTES];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CryptoError("no randomness".into()))?;
    Ok(RefreshToken::encode(&bytes))
}

/// How the store finds `token`.
pub fn hash(token: &RefreshToken) -> TokenHash {
    TokenHash(
        digest::digest(&digest::SHA256, token.expose().as_bytes())
            .as_ref()
            .to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(RefreshToken::parse(a.expose().to_owned()), Ok(a.clone()));
        assert_eq!(hash(&a).0.len(), 32);
        assert_ne!(hash(&a), hash(&b));
    }
}
