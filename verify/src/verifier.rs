//! The verifier's state and its one hot operation, [`Inner::verify`]: memory only, no I/O, no
//! await. The background tasks (`keys`, `feed`) fill the state; tests fill it by hand.

use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, watch};

use crate::{
    Claims, VerifyError,
    cache::{Cache, Entry},
    clock::{Clock, Now},
    jwks::{Expectations, KeySet},
    revocations::Revocations,
    token::{self, MAX_TOKEN_BYTES},
};

/// The settings a verifier was built with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub expect: Expectations,
    /// Tolerated clock skew on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: i64,
    /// `None`: never refuse for staleness (fail open).
    pub max_staleness_ms: Option<u64>,
    pub cache_capacity: usize,
}

/// What has been loaded at least once: `ready()` waits for both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub keys: bool,
    pub feed: bool,
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    keys: RwLock<Arc<KeySet>>,
    /// Asks the key task for a refetch (an unknown `kid` was seen); permits coalesce.
    pub refetch: Notify,
    pub revocations: Revocations,
    cache: Cache,
    pub loaded: watch::Sender<Loaded>,
}

impl Inner {
    pub(crate) fn new(settings: Settings, clock: Arc<dyn Clock>) -> Self {
        Self {
            cache: Cache::new(settings.cache_capacity),
            settings,
            clock,
            keys: RwLock::default(),
            refetch: Notify::new(),
            revocations: Revocations::default(),
            loaded: watch::Sender::new(Loaded::default()),
        }
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Malformed);
        }
        let now = self.clock.now();
        if let Some(outcome) = self
            .cache
            .with(token, |entry| self.check_cached(entry, now))
        {
            return outcome;
        }
        let generation = self.cache.generation();
        let keys = Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()));
        let claims =
            token::check(token, &keys, self.settings.leeway, now.unix).inspect_err(|e| {
                if *e == VerifyError::UnknownKey {
                    self.refetch.notify_one();
                }
            })?;
        self.check_fresh(now)?;
        let clean_at = self.revocations.epoch();
        if self.revocations.is_revoked(&claims) {
            return Err(VerifyError::Revoked);
        }
        let leeway = self.settings.leeway;
        let live = |c: &Claims| now.unix < c.exp.saturating_add(leeway);
        self.cache
            .insert(token, claims.clone(), generation, clean_at, live);
        Ok(claims)
    }

    /// A cached token: what could have changed since it was verified.
    fn check_cached(&self, entry: &Entry, now: Now) -> Result<Claims, VerifyError> {
        if now.unix >= entry.claims.exp.saturating_add(self.settings.leeway) {
            return Err(VerifyError::Expired);
        }
        self.check_fresh(now)?;
        if self
            .revocations
            .is_revoked_since(&entry.claims, &entry.clean_at)
        {
            return Err(VerifyError::Revoked);
        }
        Ok(entry.claims.clone())
    }

    fn check_fresh(&self, now: Now) -> Result<(), VerifyError> {
        if self
            .revocations
            .is_fresh(now, self.settings.max_staleness_ms)
        {
            Ok(())
        } else {
            Err(VerifyError::Stale)
        }
    }

    /// Installs freshly fetched keys. A set that lost a key empties the cache: tokens signed by
    /// the key that is gone must stop verifying, cached or not.
    pub(crate) fn install_keys(&self, newer: KeySet) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let lost_one = !keys.all_kept_in(&newer);
        let usable = !newer.is_empty();
        *keys = Arc::new(newer);
        drop(keys);
        if lost_one {
            self.cache.clear();
        }
        if usable {
            self.loaded
                .send_if_modified(|l| !std::mem::replace(&mut l.keys, true));
        }
    }

    pub(crate) fn has_keys(&self) -> bool {
        !self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// The feed sent everything it had: `ready()` may resolve.
    pub(crate) fn feed_loaded(&self) {
        self.loaded
            .send_if_modified(|l| !std::mem::replace(&mut l.feed, true));
    }
}

#[cfg(test)]
impl Inner {
    pub(crate) fn cache_len(&self) -> usize {
        self.cache.len()
    }
}
