//! Everything secret: password hashing on a bounded blocking pool, the master key and what it
//! seals, signing keys and JWTs, and the making and hashing of refresh tokens.

pub mod jwt;
mod key_file;
pub mod keys;
pub mod password;
pub mod refresh;
pub mod seal;

/// A failure inside a cryptographic primitive: never caused by client input, so never shown to it.
#[derive(Debug, thiserror::Error)]
#[error("cryptographic operation failed: {0}")]
pub struct CryptoError(pub String);
