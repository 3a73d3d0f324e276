//! The use cases: what each call does, in terms of the domain rules, the crypto and the store. The
//! service owns the clock, the signing keys in memory and the revocation cache that keeps
//! Introspect and ext_authz off the database.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use crate::{
    crypto::keys::SigningAlg,
    crypto::{
        CryptoError,
        jwt::Expectations,
        password::{Cost, HashError, Hasher},
        seal::{MasterKey, Sealer},
    },
    domain::{UnixMs, family::Lifetimes, throttle::Policy, types::InputError},
    store::{Store, StoreError},
};

mod access;
mod housekeeping;
mod keys;
mod login;
mod refresh;
mod revocations;
mod sessions;
mod users;

pub use access::{Introspection, TokenKind};
pub use keys::{KeyInfo, KeyStatus, Keyring};
pub use login::LoginInput;
pub use revocations::RevocationCache;
pub use sessions::SessionView;
pub use users::UserError;

/// The source of "now". Business logic never reads the system clock itself.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixMs;
}

pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system clock
    fn now(&self) -> UnixMs {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told: for tests that cross lifetimes without waiting.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now: UnixMs) -> Self {
        Self(AtomicI64::new(now))
    }

    pub fn advance(&self, ms: UnixMs) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMs {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything the use cases are tuned by.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub audience: String,
    pub lifetimes: Lifetimes,
    /// Tolerated clock skew on `exp`/`nbf`, in seconds.
    pub leeway_secs: i64,
    pub throttle: Policy,
    pub signing_alg: SigningAlg,
    pub password_cost: Cost,
    /// Password hashes computed at once.
    pub hash_concurrency: usize,
}

/// What a call can fail with. The gRPC layer maps each to a status and an `ErrorInfo` reason.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    InvalidArgument(#[from] InputError),
    #[error("the token is malformed")]
    TokenMalformed,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("the refresh token is not valid")]
    RefreshTokenInvalid,
    #[error("the refresh token has expired")]
    RefreshTokenExpired,
    #[error("the session has expired")]
    SessionExpired,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("a valid bearer access token is required")]
    AccessTokenInvalid,
    #[error("not allowed")]
    NotAllowed,
    #[error("the server is busy; try again later")]
    Overloaded,
    #[error("the token store is unavailable; try again")]
    StoreUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => Self::StoreUnavailable(cause.to_string()),
            // With its causes: this text is all the log will show of it.
            other => Self::Internal(format!("{:#}", anyhow::Error::new(other))),
        }
    }
}

impl From<CryptoError> for ServiceError {
    fn from(e: CryptoError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Overloaded => Self::Overloaded,
            HashError::Internal(cause) => Self::Internal(cause),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// The answer to Login and Refresh. `Debug` leaves the tokens out.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub session_id: String,
    pub scope: String,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("session_id", &self.session_id)
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

pub struct Service {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    hasher: Hasher,
    keys: Keyring,
    revocations: RevocationCache,
    /// Seals the live refresh token of each session (for retries).
    token_sealer: Sealer,
    /// What presented access tokens must match; derived once from the settings, not per check.
    expectations: Expectations,
}

impl Service {
    /// Prepares the service: the dummy password hash, the signing keys in the store (see
    /// [`Service::ensure_signing_key`]) and the revocation cache.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        master_key: &MasterKey,
    ) -> ServiceResult<Self> {
        let hasher = Hasher::new(settings.password_cost, settings.hash_concurrency)?;
        let keys = Keyring::new(
            master_key.sealer("signing-keys"),
            settings.lifetimes.access_ttl,
            settings.leeway_secs,
        );
        keys.reload(store.as_ref(), clock.now()).await?;
        let expectations = Expectations {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway_secs,
        };
        let revocations = RevocationCache::default();
        revocations.catch_up(store.as_ref(), clock.now()).await?;
        Ok(Self {
            store,
            clock,
            settings,
            hasher,
            keys,
            revocations,
            token_sealer: master_key.sealer("refresh-tokens"),
            expectations,
        })
    }

    pub fn now(&self) -> UnixMs {
        self.clock.now()
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    pub fn revocations(&self) -> &RevocationCache {
        &self.revocations
    }

    /// Brings the caches up to date with the store: revocations made by other processes and keys
    /// rotated by `latchkey keys rotate`. Called periodically by the server.
    pub async fn sync_revocations(&self) -> ServiceResult<()> {
        self.revocations
            .catch_up(self.store.as_ref(), self.clock.now())
            .await
    }

    pub async fn sync_keys(&self) -> ServiceResult<()> {
        self.keys
            .reload(self.store.as_ref(), self.clock.now())
            .await
    }

    /// Sessions that are live now, for the `latchkey_active_sessions` gauge.
    pub async fn count_live_sessions(&self) -> ServiceResult<i64> {
        Ok(self.store.count_live_sessions(self.clock.now()).await?)
    }
}

impl Service {
    /// For `serve`: creates a signing key when the store has none, or when the newest one is not of
    /// the configured algorithm. Nothing else creates keys behind the operator's back (the CLI's
    /// `user` and `keys list` commands leave them alone).
    pub async fn ensure_signing_key(&self) -> ServiceResult<()> {
        self.keys
            .ensure_active(
                self.store.as_ref(),
                self.settings.signing_alg,
                self.clock.now(),
            )
            .await
    }

    /// `latchkey keys rotate`: a new active key of the configured algorithm; returns its id.
    pub async fn rotate_keys(&self) -> ServiceResult<String> {
        self.keys
            .rotate(
                self.store.as_ref(),
                self.settings.signing_alg,
                self.clock.now(),
            )
            .await
    }
}

/// The service as the edges hold it: empty until the store has been reached at start-up, and every
/// call answers STORE_UNAVAILABLE until then.
pub struct ServiceCell {
    service: std::sync::OnceLock<Arc<Service>>,
    ready: tokio::sync::watch::Sender<bool>,
}

impl Default for ServiceCell {
    fn default() -> Self {
        Self {
            service: std::sync::OnceLock::new(),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl ServiceCell {
    pub fn get(&self) -> ServiceResult<&Arc<Service>> {
        self.service.get().ok_or_else(|| {
            ServiceError::StoreUnavailable("starting: the store has not been reached yet".into())
        })
    }

    /// Fills the cell once; later calls change nothing.
    pub fn set(&self, service: Arc<Service>) {
        if self.service.set(service).is_ok() {
            self.ready.send_replace(true);
        }
    }

    /// Waits until the cell is filled.
    pub async fn wait(&self) -> Arc<Service> {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
        self.service
            .get()
            .cloned()
            .expect("filled before `ready` turned true")
    }
}
