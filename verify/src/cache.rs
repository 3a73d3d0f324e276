//! Tokens already verified (signature, type, issuer, audience, times), so that a token seen again
//! costs a lookup instead of a signature check. Expiry, staleness and revocation are still checked
//! on every call by the verifier; only what cannot change is remembered.
//!
//! Keyed by the whole token string. A hit needs the full string to be equal, so no collision of
//! the hash can make a forged token pass for a cached one; a cryptographic digest as the key would
//! cost more than the lookup (SHA-256 of a 600-byte token is about 1 µs), and a short
//! non-cryptographic hash as the key alone could be collided on purpose. The hash only picks a
//! bucket, and only verified tokens are ever inserted, so an attacker cannot crowd one bucket
//! either. Sharded so that concurrent readers do not all touch one lock word; bounded, evicting
//! expired entries first, then arbitrary ones.

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::Claims;

const SHARDS: usize = 32;

/// A verified token's claims, and the revocation epoch at which it was last found clean.
pub(crate) struct Entry {
    pub claims: Claims,
    pub clean_at: AtomicU64,
}

type Shard = HashMap<Box<str>, Entry, foldhash::fast::RandomState>;

pub(crate) struct Cache {
    shards: Box<[RwLock<Shard>]>,
    per_shard: usize,
    /// Moves at each [`Cache::clear`]: a token verified before a clear is not inserted after it.
    generation: AtomicU64,
}

impl Cache {
    /// A cache of about `capacity` tokens; 0 turns it off.
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect();
        Self {
            shards,
            per_shard: capacity.div_ceil(SHARDS),
            generation: AtomicU64::new(0),
        }
    }

    /// A shard from the token's last bytes (its signature's: uniformly spread for genuine tokens,
    /// the only ones inserted), cheaper than hashing the whole token twice.
    fn shard(&self, token: &str) -> &RwLock<Shard> {
        let tail = token.as_bytes().iter().rev().take(8);
        let folded = tail.fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let mixed = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        &self.shards[mixed as usize % SHARDS]
    }

    /// `f` applied to the entry of `token`, if it is cached.
    pub(crate) fn with<R>(&self, token: &str, f: impl FnOnce(&Entry) -> R) -> Option<R> {
        if self.per_shard == 0 {
            return None;
        }
        let shard = self.shard(token).read().unwrap_or_else(|p| p.into_inner());
        shard.get(token).map(f)
    }

    /// Read before the keys a token is verified with, and handed back to [`Cache::insert`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers a token verified in cache `generation`, found clean at revocation epoch
    /// `clean_at`, unless the cache was cleared since. `live` says whether an entry may still be
    /// used (not expired): a full shard drops those that may not first.
    pub(crate) fn insert(
        &self,
        token: &str,
        claims: Claims,
        generation: u64,
        clean_at: u64,
        live: impl Fn(&Claims) -> bool,
    ) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(token).write().unwrap_or_else(|p| p.into_inner());
        if self.generation() != generation {
            return;
        }
        if shard.len() >= self.per_shard {
            shard.retain(|_, entry| live(&entry.claims));
        }
        if shard.len() >= self.per_shard {
            // Still full of live tokens: drop an eighth, whichever come first, so that eviction
            // runs once per many insertions rather than on each.
            let mut excess = shard.len() + 1 - self.per_shard * 7 / 8;
            shard.retain(|_, _| {
                let keep = excess == 0;
                excess = excess.saturating_sub(1);
                keep
            });
        }
        let entry = Entry {
            claims,
            clean_at: AtomicU64::new(clean_at),
        };
        shard.insert(token.into(), entry);
    }

    /// Forgets everything (the keys changed: some cached tokens may no longer verify).
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            shard.write().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let len = |s: &RwLock<Shard>| s.read().unwrap_or_else(|p| p.into_inner()).len();
        self.shards.iter().map(len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "u".into(),
            sid: "s".into(),
            jti: "j".into(),
            scope: String::new(),
            client_id: "default".into(),
            iat: 0,
            exp,
            iss: "latchkey".into(),
            aud: "latchkey".into(),
        }
    }

    #[test]
    fn the_cache_stays_bounded_and_drops_expired_tokens_first() {
        let cache = Cache::new(SHARDS * 16);
        for i in 0..10_000 {
            let live_one = i == 0;
            cache.insert(
                &format!("token-{i:05}"),
                claims(if live_one { 100 } else { 1 }),
                0,
                0,
                |c| c.exp > 50,
            );
        }
        assert!(cache.len() <= SHARDS * 16, "{} entries", cache.len());
        assert!(
            cache.with("token-00000", |_| ()).is_some(),
            "the live token was evicted"
        );
    }

    #[test]
    fn a_token_verified_before_a_clear_is_not_inserted_after_it() {
        let cache = Cache::new(64);
        let generation = cache.generation();
        cache.clear();
        cache.insert("t", claims(100), generation, 0, |_| true);
        assert!(cache.with("t", |_| ()).is_none());
        cache.insert("t", claims(100), cache.generation(), 0, |_| true);
        assert!(cache.with("t", |_| ()).is_some());
    }

    #[test]
    fn a_cache_of_capacity_zero_keeps_nothing() {
        let cache = Cache::new(0);
        cache.insert("t", claims(100), 0, 0, |_| true);
        assert!(cache.with("t", |_| ()).is_none());
    }
}
