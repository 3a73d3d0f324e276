//! Revocation state in memory, so that Introspect and ext_authz answer without the database, and
//! the feed that WatchRevocations streams serve (see `feed_log`). Both are fed by the store's
//! revocation feed: revocations made here are applied at once; those made by other processes (the
//! CLI, other replicas) arrive with the next sync, one read of the store for the whole process. If
//! syncing has failed for longer than [`MAX_STALENESS`], the cache refuses to vouch for any token.

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;

use super::{ServiceError, ServiceResult, error::poisoned, feed_log::FeedLog};
use crate::{
    crypto::jwt::AccessClaims,
    domain::{
        UnixMs,
        revocation::{Revocation, RevocationTarget},
    },
    store::Store,
};

/// How old the last successful sync may be before tokens can no longer be vouched for.
const MAX_STALENESS: Duration = Duration::from_secs(2);
const BATCH: i64 = 1_000;

#[derive(Default)]
struct State {
    /// Revoked session → when its event may be forgotten.
    sessions: HashMap<String, UnixMs>,
    jtis: HashMap<String, UnixMs>,
    /// User → (cutoff, when it may be forgotten).
    cutoffs: HashMap<String, (UnixMs, UnixMs)>,
    last_seq: i64,
    /// Monotonic, not the business clock: staleness is about the feed, not about token time.
    synced_at: Option<Instant>,
    /// When the last sync that completed began: every event committed before then is here.
    complete_as_of: Option<Instant>,
}

pub(super) struct RevocationCache {
    state: RwLock<State>,
    /// The feed, in order, for WatchRevocations streams.
    log: FeedLog,
    /// Rung when an event written here waits for the store to be read (see `feed_log`).
    wanted: Notify,
    /// One sync at a time, guarding the outcome of the last one (see `catch_up`).
    syncing: tokio::sync::Mutex<Result<(), String>>,
    /// Syncs started, and the number of the last one completed.
    started: AtomicU64,
    completed: AtomicU64,
    /// Reads of the store's feed, whoever asked for them.
    reads: AtomicU64,
}

impl Default for RevocationCache {
    fn default() -> Self {
        Self {
            state: RwLock::new(State::default()),
            log: FeedLog::default(),
            wanted: Notify::new(),
            syncing: tokio::sync::Mutex::new(Ok(())),
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }
}

impl RevocationCache {
    /// Applies events just written here, and offers them to the feed. Events are idempotent, so
    /// applying one twice (written here, then read back by a sync) is harmless.
    pub(super) fn apply(&self, events: &[Revocation]) -> ServiceResult<()> {
        self.remember(events)?;
        if self.log.offer(events)? {
            self.wanted.notify_one();
        }
        Ok(())
    }

    /// Applies events to the revocation sets.
    fn remember(&self, events: &[Revocation]) -> ServiceResult<()> {
        let mut state = self.state.write().map_err(poisoned("revocation cache"))?;
        for event in events {
            match &event.target {
                RevocationTarget::Session(id) => {
                    state.sessions.insert(id.clone(), event.expires_at);
                }
                RevocationTarget::Jti(jti) => {
                    state.jtis.insert(jti.clone(), event.expires_at);
                }
                RevocationTarget::User {
                    user_id,
                    not_before,
                } => {
                    let entry = state
                        .cutoffs
                        .entry(user_id.clone())
                        .or_insert((*not_before, event.expires_at));
                    *entry = (entry.0.max(*not_before), entry.1.max(event.expires_at));
                }
            }
        }
        Ok(())
    }

    /// Returns once the cache holds every event committed before this call began: a revocation
    /// made through any replica is seen by the next call here. Concurrent callers share syncs: a
    /// caller waits for one sync that started after it arrived, never for a queue of them; and if a
    /// sync fails while it waits, it fails alike rather than trying again (the store is down).
    pub(super) async fn catch_up(&self, store: &dyn Store, now: UnixMs) -> ServiceResult<()> {
        let started_before = self.started.load(Ordering::SeqCst);
        let completed_before = self.completed.load(Ordering::SeqCst);
        let mut outcome = self.syncing.lock().await;
        let completed = self.completed.load(Ordering::SeqCst);
        if completed > started_before || (completed > completed_before && outcome.is_err()) {
            let shared = outcome.clone();
            return shared.map_err(|cause| ServiceError::StoreUnavailable(cause.into()));
        }
        let ticket = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let result = self.sync(store, now).await;
        *outcome = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| e.chain().to_string());
        self.completed.store(ticket, Ordering::SeqCst);
        result
    }

    /// Returns once the cache holds every event committed more than `within` ago: at once when a
    /// sync that began since then has completed, else after catching up (see [`Self::catch_up`]).
    pub(super) async fn recent(
        &self,
        store: &dyn Store,
        now: UnixMs,
        within: Duration,
    ) -> ServiceResult<()> {
        let complete_as_of = self
            .state
            .read()
            .map_err(poisoned("revocation cache"))?
            .complete_as_of;
        if complete_as_of.is_some_and(|at| at.elapsed() <= within) {
            return Ok(());
        }
        self.catch_up(store, now).await
    }

    /// Reads every event after the last one seen, then forgets expired ones.
    async fn sync(&self, store: &dyn Store, now: UnixMs) -> ServiceResult<()> {
        let began = Instant::now();
        loop {
            let after = self
                .state
                .read()
                .map_err(poisoned("revocation cache"))?
                .last_seq;
            self.reads.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("latchkey_revocation_store_reads_total").increment(1);
            let events = store.revocations_after(after, BATCH).await?;
            self.remember(&events)?;
            if self.log.extend(&events)? {
                self.wanted.notify_one();
            }
            let mut state = self.state.write().map_err(poisoned("revocation cache"))?;
            if let Some(last) = events.last() {
                state.last_seq = state.last_seq.max(last.seq);
            }
            if (events.len() as i64) < BATCH {
                state.synced_at = Some(Instant::now());
                state.complete_as_of = state.complete_as_of.max(Some(began));
                state.sessions.retain(|_, exp| now < *exp);
                state.jtis.retain(|_, exp| now < *exp);
                state.cutoffs.retain(|_, (_, exp)| now < *exp);
                drop(state);
                return self.log.forget_expired(now);
            }
        }
    }

    /// Whether the cache is recent enough to vouch for a token.
    pub(super) fn check_fresh(&self) -> ServiceResult<()> {
        let synced_at = self
            .state
            .read()
            .map_err(poisoned("revocation cache"))?
            .synced_at;
        match synced_at {
            Some(at) if at.elapsed() <= MAX_STALENESS => Ok(()),
            _ => Err(ServiceError::StoreUnavailable(
                "revocation state is stale".into(),
            )),
        }
    }

    /// Whether a verified access token has been revoked: its session, its id, or every token of
    /// its user issued before a cutoff.
    pub(super) fn is_revoked(&self, claims: &AccessClaims) -> ServiceResult<bool> {
        let state = self.state.read().map_err(poisoned("revocation cache"))?;
        let cut = state
            .cutoffs
            .get(&claims.sub)
            .is_some_and(|(not_before, _)| claims.iat * 1000 < *not_before);
        Ok(cut || state.sessions.contains_key(&claims.sid) || state.jtis.contains_key(&claims.jti))
    }

    /// The feed in memory.
    pub(super) fn log(&self) -> &FeedLog {
        &self.log
    }

    /// Resolves once an event written here waits for the store to be read.
    pub(super) async fn wanted(&self) {
        self.wanted.notified().await;
    }

    /// How many times the store's feed has been read.
    pub(super) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: "u1".into(),
            aud: "a".into(),
            exp: iat + 900,
            iat,
            nbf: iat,
            jti: "j1".into(),
            sid: "s1".into(),
            scope: String::new(),
            client_id: "default".into(),
        }
    }

    fn event(seq: i64, target: RevocationTarget) -> Revocation {
        Revocation {
            seq,
            target,
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn each_kind_of_revocation_kills_the_tokens_it_names() {
        let c = RevocationCache::default();
        assert!(!c.is_revoked(&claims(100)).unwrap());
        c.apply(&[event(1, RevocationTarget::Jti("j1".into()))])
            .unwrap();
        assert!(c.is_revoked(&claims(100)).unwrap());

        let c = RevocationCache::default();
        c.apply(&[event(1, RevocationTarget::Session("s1".into()))])
            .unwrap();
        assert!(c.is_revoked(&claims(100)).unwrap());
    }

    #[test]
    fn a_user_cutoff_kills_tokens_issued_in_earlier_seconds_only() {
        let c = RevocationCache::default();
        c.apply(&[event(
            1,
            RevocationTarget::User {
                user_id: "u1".into(),
                not_before: 100_000,
            },
        )])
        .unwrap();
        assert!(c.is_revoked(&claims(99)).unwrap());
        assert!(!c.is_revoked(&claims(100)).unwrap());
        // A later, lower cutoff never lowers it.
        c.apply(&[event(
            2,
            RevocationTarget::User {
                user_id: "u1".into(),
                not_before: 50_000,
            },
        )])
        .unwrap();
        assert!(c.is_revoked(&claims(99)).unwrap());
    }

    #[tokio::test]
    async fn recent_reads_the_store_only_when_the_last_sync_began_too_long_ago() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let store = crate::store::connect(&url, crate::store::Mode::Create)
            .await
            .unwrap();
        let c = RevocationCache::default();
        let within = Duration::from_millis(100);
        c.recent(store.as_ref(), 0, within).await.unwrap();
        assert_eq!(c.reads(), 1, "a cache never synced reads the store");
        for _ in 0..10 {
            c.recent(store.as_ref(), 0, within).await.unwrap();
        }
        assert_eq!(c.reads(), 1, "a recent sync is enough");
        tokio::time::sleep(within + Duration::from_millis(20)).await;
        c.recent(store.as_ref(), 0, within).await.unwrap();
        assert_eq!(c.reads(), 2, "an old sync is not");
    }

    #[test]
    fn an_unsynced_cache_vouches_for_nothing() {
        assert!(RevocationCache::default().check_fresh().is_err());
    }
}
