//! Access tokens already verified, so that a token presented again (a service introspecting or an
//! ext_authz sidecar checking the same bearer on every request) costs no signature check. Only the
//! signature and the claims are remembered, under the token's fingerprint (never the token): the
//! time rules, the signing key's trust and revocation are checked again on every call.
//!
//! Bounded: at most [`CAPACITY`] tokens. When full, expired entries go; if none has expired, the
//! whole cache is dropped and refills with the tokens in use (a flood of distinct tokens costs its
//! own signature checks, never memory).

use std::{collections::HashMap, sync::RwLock};

use super::{ServiceResult, error::poisoned};
use crate::crypto::jwt::AccessClaims;

/// Tokens remembered at most: a few MiB (claims of a few hundred bytes each).
pub(super) const CAPACITY: usize = 10_000;

/// A verified token: the key that signed it and its claims.
#[derive(Debug, Clone)]
pub(super) struct Verified {
    pub kid: String,
    pub claims: AccessClaims,
}

#[derive(Default)]
pub(super) struct VerifiedTokens {
    entries: RwLock<HashMap<[u8; 32], Verified>>,
}

impl VerifiedTokens {
    /// What was verified of the token with this fingerprint, if it was.
    pub(super) fn get(&self, fingerprint: &[u8; 32]) -> ServiceResult<Option<Verified>> {
        Ok(self
            .entries
            .read()
            .map_err(poisoned("verified-token cache"))?
            .get(fingerprint)
            .cloned())
    }

    /// Remembers a token just verified; `now` in Unix seconds, to make room.
    pub(super) fn insert(
        &self,
        fingerprint: [u8; 32],
        verified: Verified,
        now: i64,
    ) -> ServiceResult<()> {
        let mut entries = self
            .entries
            .write()
            .map_err(poisoned("verified-token cache"))?;
        if entries.len() >= CAPACITY {
            entries.retain(|_, v| v.claims.exp > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(fingerprint, verified);
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(exp: i64) -> Verified {
        Verified {
            kid: "k1".into(),
            claims: AccessClaims {
                iss: "i".into(),
                sub: "u".into(),
                aud: "a".into(),
                exp,
                iat: 0,
                nbf: 0,
                jti: "j".into(),
                sid: "s".into(),
                scope: String::new(),
                client_id: "default".into(),
            },
        }
    }

    fn fingerprint(i: usize) -> [u8; 32] {
        let mut f = [0; 32];
        f[..8].copy_from_slice(&(i as u64).to_be_bytes());
        f
    }

    #[test]
    fn a_remembered_token_is_found_by_its_fingerprint_only() {
        let cache = VerifiedTokens::default();
        cache.insert(fingerprint(1), verified(100), 0).unwrap();
        assert_eq!(cache.get(&fingerprint(1)).unwrap().unwrap().claims.exp, 100);
        assert!(cache.get(&fingerprint(2)).unwrap().is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_tokens_first_and_never_grows_past_its_capacity() {
        let cache = VerifiedTokens::default();
        // Half expired by `now` = 50, half not.
        for i in 0..CAPACITY {
            let exp = if i % 2 == 0 { 10 } else { 100 };
            cache.insert(fingerprint(i), verified(exp), 0).unwrap();
        }
        assert_eq!(cache.len(), CAPACITY);
        cache
            .insert(fingerprint(CAPACITY), verified(100), 50)
            .unwrap();
        assert_eq!(cache.len(), CAPACITY / 2 + 1);
        assert!(cache.get(&fingerprint(1)).unwrap().is_some());
        assert!(cache.get(&fingerprint(0)).unwrap().is_none());

        // Full of live tokens: it starts again rather than grow.
        for i in 0..2 * CAPACITY {
            cache.insert(fingerprint(i), verified(100), 50).unwrap();
            assert!(cache.len() <= CAPACITY);
        }
    }
}
