//! The signing keys in memory. The store is the source of truth, so every replica and the CLI agree:
//! the newest key signs; a key that was superseded stays published, and trusted, until every token
//! it can have signed has expired.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use jsonwebtoken::jwk::JwkSet;

use super::{Service, ServiceError, ServiceResult, error::poisoned};
use crate::{
    crypto::{
        CryptoError,
        keys::{SigningAlg, SigningKey},
        seal::Sealer,
    },
    domain::UnixMs,
    store::{KeyRecord, Store},
};

/// How long a replica may keep signing with a superseded key before its key sync notices the new
/// one. With the access horizon's second of slack, a superseded key stays trusted 5 s beyond the
/// access lifetime and leeway.
const SIGNER_LAG: UnixMs = 4_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Signs new tokens.
    Active,
    /// Superseded, still published: tokens it signed may be alive.
    Published,
    /// Superseded long enough that no token it signed can be alive.
    Retired,
}

impl KeyStatus {
    /// As the API and the command line name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Published => "published",
            Self::Retired => "retired",
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub created_at: UnixMs,
    pub status: KeyStatus,
}

struct KeySet {
    active: Arc<SigningKey>,
    trusted: HashMap<String, Arc<SigningKey>>,
    jwks_json: Arc<str>,
    infos: Vec<KeyInfo>,
    /// When the next published key retires: the set must be rebuilt then.
    next_retirement: Option<UnixMs>,
}

pub(super) struct Keyring {
    sealer: Sealer,
    /// How long after being superseded a key stays trusted: a replica may still sign with it for
    /// `SIGNER_LAG`, and its last token lives the access horizon.
    overlap: UnixMs,
    current: RwLock<Option<Arc<KeySet>>>,
}

impl Keyring {
    /// `access_horizon`: see [`crate::domain::family::Lifetimes::access_horizon`].
    pub fn new(sealer: Sealer, access_horizon: UnixMs) -> Self {
        Self {
            sealer,
            overlap: access_horizon + SIGNER_LAG,
            current: RwLock::new(None),
        }
    }

    fn set(&self) -> ServiceResult<Arc<KeySet>> {
        self.current
            .read()
            .map_err(poisoned("key cache"))?
            .clone()
            .ok_or_else(|| ServiceError::internal("no signing key loaded"))
    }

    /// The key new tokens are signed with.
    pub(super) fn active(&self) -> ServiceResult<Arc<SigningKey>> {
        Ok(self.set()?.active.clone())
    }

    /// A trusted key by id; `None` for ids we never issued or have retired.
    pub(super) fn trusted(&self, kid: &str) -> ServiceResult<Option<Arc<SigningKey>>> {
        Ok(self.set()?.trusted.get(kid).cloned())
    }

    /// The published JWK Set (RFC 7517), public members only.
    fn jwks_json(&self) -> ServiceResult<Arc<str>> {
        Ok(self.set()?.jwks_json.clone())
    }

    /// Every key and its state; none before the first `serve` or `keys rotate`.
    fn list(&self) -> ServiceResult<Vec<KeyInfo>> {
        Ok(self
            .current
            .read()
            .map_err(poisoned("key cache"))?
            .as_ref()
            .map(|s| s.infos.clone())
            .unwrap_or_default())
    }

    /// Rebuilds the key set from the store.
    pub(super) async fn reload(&self, store: &dyn Store, now: UnixMs) -> ServiceResult<()> {
        let records = store.keys().await?;
        let Some(newest) = records.last() else {
            return Ok(());
        };
        let unchanged = self
            .current
            .read()
            .map_err(poisoned("key cache"))?
            .as_ref()
            .is_some_and(|s| {
                s.active.kid == newest.kid
                    && s.infos.len() == records.len()
                    && s.next_retirement.is_none_or(|at| now < at)
            });
        if unchanged {
            return Ok(());
        }
        let set = self.build(&records, now)?;
        *self.current.write().map_err(poisoned("key cache"))? = Some(Arc::new(set));
        Ok(())
    }

    fn build(&self, records: &[KeyRecord], now: UnixMs) -> ServiceResult<KeySet> {
        let mut trusted = HashMap::new();
        let mut infos = Vec::with_capacity(records.len());
        let mut jwks = JwkSet { keys: Vec::new() };
        let mut active = None;
        let mut next_retirement: Option<UnixMs> = None;
        for (i, record) in records.iter().enumerate() {
            let superseded_at = records.get(i + 1).map(|next| next.created_at);
            let status = match superseded_at {
                None => KeyStatus::Active,
                Some(at) if now < at + self.overlap => {
                    let retires = at + self.overlap;
                    next_retirement = Some(next_retirement.map_or(retires, |n| n.min(retires)));
                    KeyStatus::Published
                }
                Some(_) => KeyStatus::Retired,
            };
            infos.push(KeyInfo {
                kid: record.kid.clone(),
                alg: record.alg.clone(),
                created_at: record.created_at,
                status,
            });
            if status == KeyStatus::Retired {
                continue;
            }
            let key = Arc::new(self.open(record)?);
            jwks.keys.push(key.jwk.clone());
            trusted.insert(key.kid.clone(), key.clone());
            active = Some(key);
        }
        let jwks_json =
            serde_json::to_string(&jwks).map_err(|e| ServiceError::Internal(Box::new(e)))?;
        Ok(KeySet {
            active: active.ok_or_else(|| ServiceError::internal("no active signing key"))?,
            trusted,
            jwks_json: Arc::from(jwks_json),
            infos,
            next_retirement,
        })
    }

    fn open(&self, record: &KeyRecord) -> ServiceResult<SigningKey> {
        let alg = SigningAlg::parse(&record.alg).map_err(CryptoError)?;
        let der = zeroize::Zeroizing::new(
            self.sealer
                .open(&record.sealed_private, record.kid.as_bytes())?,
        );
        let key = SigningKey::from_pkcs8(alg, &der)?;
        if key.kid != record.kid {
            return Err(ServiceError::internal(format!(
                "signing key {} does not match its id",
                record.kid
            )));
        }
        Ok(key)
    }

    /// Makes sure a key of `alg` signs: creates one when there is none or the newest is of
    /// another algorithm (the configuration changed).
    async fn ensure_active(
        &self,
        store: &dyn Store,
        alg: SigningAlg,
        now: UnixMs,
    ) -> ServiceResult<()> {
        let current = self
            .current
            .read()
            .map_err(poisoned("key cache"))?
            .as_ref()
            .map(|s| s.active.alg);
        if current != Some(alg) {
            self.rotate(store, alg, now).await?;
        }
        Ok(())
    }

    /// Adds a new active key; the previous one stays published until its tokens have expired.
    async fn rotate(
        &self,
        store: &dyn Store,
        alg: SigningAlg,
        now: UnixMs,
    ) -> ServiceResult<String> {
        let der = zeroize::Zeroizing::new(alg.generate_pkcs8()?);
        let key = SigningKey::from_pkcs8(alg, &der)?;
        // Keys created within the same millisecond must still order: never go back in time.
        let newest = store.keys().await?.last().map_or(now, |k| k.created_at + 1);
        store
            .insert_key(&KeyRecord {
                kid: key.kid.clone(),
                alg: alg.name().to_owned(),
                sealed_private: self.sealer.seal(&der, key.kid.as_bytes())?,
                created_at: now.max(newest),
            })
            .await?;
        self.reload(store, now).await?;
        Ok(key.kid)
    }
}

impl Service {
    /// For `serve`: creates a signing key when the store has none, or when the newest one is not of
    /// the configured algorithm. Nothing else creates keys behind the operator's back (the CLI's
    /// `user` and `keys list` commands leave them alone).
    pub async fn ensure_signing_key(&self) -> ServiceResult<()> {
        let (store, alg) = (self.store.as_ref(), self.settings.signing_alg);
        self.keys.ensure_active(store, alg, self.clock.now()).await
    }

    /// `latchkey keys rotate`: a new active key of the configured algorithm; returns its id.
    pub async fn rotate_keys(&self) -> ServiceResult<String> {
        let (store, alg) = (self.store.as_ref(), self.settings.signing_alg);
        self.keys.rotate(store, alg, self.clock.now()).await
    }

    /// Picks up keys rotated by other processes (`latchkey keys rotate`). Called periodically by
    /// the server.
    pub async fn sync_keys(&self) -> ServiceResult<()> {
        self.keys
            .reload(self.store.as_ref(), self.clock.now())
            .await
    }

    /// The published JWK Set (RFC 7517), public members only.
    pub fn jwks_json(&self) -> ServiceResult<Arc<str>> {
        self.keys.jwks_json()
    }

    /// Every signing key and its state; none before the first `serve` or `keys rotate`.
    pub fn list_keys(&self) -> ServiceResult<Vec<KeyInfo>> {
        self.keys.list()
    }
}
