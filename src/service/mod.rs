//! The use cases: what each call does, in terms of the domain rules, the crypto and the store. The
//! service owns the clock, the signing keys in memory and the revocation cache that keeps
//! Introspect and ext_authz off the database. The edges reach everything through `Service`'s own
//! methods, in domain and service types: never the store or the crypto underneath.
//!
//! One file per use case: [`login`](Service::login), [`refresh`](Service::refresh),
//! [`revoke`](Service::revoke) (and every other way a session or user is revoked),
//! [`introspect`](Service::introspect), [`authenticate`](Service::authenticate) (the callers of the
//! other RPCs, and ext_authz), [`list_sessions`](Service::list_sessions), user administration
//! (`users`, authorised by `admin`), account activity and ChangePassword (`activity`, and
//! WatchEvents in `event_feed`), signing keys, the revocation feed (`feed`, served from
//! `feed_log` and kept up to date by `follow`) and housekeeping; `tokens` issues what login and refresh answer with, and `verified`
//! remembers the access tokens whose signature was checked.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::{
    crypto::{
        jwt::Expectations,
        keys::SigningAlg,
        password::{Cost, Hasher},
        seal::{MasterKey, Sealer},
    },
    domain::{UnixMs, family::Lifetimes, throttle::Policy},
    store::Store,
};

mod activity;
mod addresses;
mod admin;
mod authenticate;
mod cell;
mod clock;
mod error;
mod event_feed;
mod feed;
mod feed_log;
mod follow;
mod housekeeping;
mod introspect;
mod keys;
mod login;
mod refresh;
mod revocations;
mod revoke;
mod sessions;
mod tokens;
mod users;
mod verified;

pub use activity::EventsListing;
pub use admin::Admin;
pub use authenticate::Caller;
pub use cell::ServiceCell;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Cause, Chain, ServiceError, ServiceResult};
pub use event_feed::EventStream;
pub use feed::{Feed, FeedItem, FeedLimits, FeedStats, HEARTBEAT, RevocationFeed};
pub use introspect::{Introspection, TokenKind};
pub use keys::{KeyInfo, KeyStatus};
pub use login::LoginCommand;
pub use sessions::SessionView;
pub use tokens::TokenPair;
pub use users::{UserChange, UserRef, UserView, UsersListing};

use addresses::{AddressLimit, MAX_ADDRESSES};
use event_feed::EventLog;
use introspect::Usernames;
use keys::Keyring;
use revocations::RevocationCache;
use verified::VerifiedTokens;

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
    pub feed: FeedLimits,
    /// Failed logins from one client address within a minute before its next attempts are
    /// refused; 0: no limit.
    pub login_failures_per_address: u32,
    /// Live sessions a user may hold; a login beyond it revokes the least recently used.
    pub max_sessions_per_user: u32,
    /// How long account events are kept (ms).
    pub event_retention: UnixMs,
}

pub struct Service {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    hasher: Hasher,
    /// Failed logins per client address, in memory.
    addresses: AddressLimit,
    keys: Keyring,
    revocations: RevocationCache,
    /// Seals each rotation's new refresh token, for retries inside the grace window.
    token_sealer: Sealer,
    /// What presented access tokens must match; derived once from the settings, not per check.
    expectations: Expectations,
    /// Access tokens whose signature was checked already.
    verified: VerifiedTokens,
    /// Usernames by user id, for Introspect's answers.
    usernames: Usernames,
    /// One permit per WatchRevocations or WatchEvents stream that may open.
    watchers: Arc<Semaphore>,
    /// The most recent account events, for WatchEvents.
    events: EventLog,
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
        let horizon = settings.lifetimes.access_horizon(settings.leeway_secs);
        let keys = Keyring::new(master_key.sealer("signing-keys"), horizon);
        keys.reload(store.as_ref(), clock.now()).await?;
        let expectations = Expectations {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway_secs,
        };
        let revocations = RevocationCache::default();
        revocations.catch_up(store.as_ref(), clock.now()).await?;
        let watchers = Arc::new(Semaphore::new(settings.feed.max_watchers));
        Ok(Self {
            store,
            clock,
            addresses: AddressLimit::new(settings.login_failures_per_address, MAX_ADDRESSES),
            settings,
            hasher,
            keys,
            revocations,
            token_sealer: master_key.sealer("refresh-tokens"),
            expectations,
            verified: VerifiedTokens::default(),
            usernames: Usernames::default(),
            watchers,
            events: EventLog::default(),
        })
    }

    /// Answers when the store does: for readiness and the health status.
    pub async fn ping(&self) -> ServiceResult<()> {
        metrics::counter!("latchkey_store_pings_total").increment(1);
        Ok(self.store.ping().await?)
    }

    /// Brings the revocation cache up to date with revocations made by other processes. Called
    /// periodically by the server.
    pub async fn sync_revocations(&self) -> ServiceResult<()> {
        self.revocations
            .catch_up(self.store.as_ref(), self.clock.now())
            .await
    }

    /// Sessions that are live now, for the `latchkey_active_sessions` gauge.
    pub async fn count_live_sessions(&self) -> ServiceResult<i64> {
        Ok(self.store.count_live_sessions(self.clock.now()).await?)
    }

    /// How long a revocation made now matters to access tokens.
    fn access_horizon(&self) -> UnixMs {
        self.settings
            .lifetimes
            .access_horizon(self.settings.leeway_secs)
    }
}
