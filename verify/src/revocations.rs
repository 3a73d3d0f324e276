//! What latchkey has revoked, as followed from its feed, and how recently the feed was heard.
//!
//! Readers check three maps under a read lock only when they must: the state carries an epoch,
//! bumped after every change, and a cached token remembers the epoch at which it was last found
//! clean. While the epoch has not moved (heartbeats move nothing), a cached token needs no look
//! at the maps at all: the hot path reads two atomics.

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use crate::{Claims, clock::Now};

/// One revocation from the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Session(String),
    Jti(String),
    /// Tokens of `user_id` issued before `not_before` (Unix seconds) are dead.
    User {
        user_id: String,
        not_before: i64,
    },
}

#[derive(Default)]
struct State {
    /// Revoked session → when its event may be forgotten (Unix seconds).
    sessions: HashMap<String, i64>,
    jtis: HashMap<String, i64>,
    /// User → (cutoff, when it may be forgotten).
    cutoffs: HashMap<String, (i64, i64)>,
}

#[derive(Default)]
pub(crate) struct Revocations {
    state: RwLock<State>,
    /// Moves after every change to `state` (see the module docs).
    epoch: AtomicU64,
    /// Whether the feed has once sent everything it had (its first heartbeat).
    loaded: AtomicBool,
    /// When the feed was last heard (monotonic ms).
    heard_at: AtomicU64,
    /// The newest `seq` seen: where a broken stream resumes.
    last_seq: AtomicU64,
}

impl Revocations {
    /// Applies one event. Events are idempotent; a cutoff only ever rises.
    pub(crate) fn apply(&self, target: Target, expires_at: i64) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match target {
            Target::Session(id) => {
                let kept = state.sessions.entry(id).or_insert(expires_at);
                *kept = (*kept).max(expires_at);
            }
            Target::Jti(jti) => {
                let kept = state.jtis.entry(jti).or_insert(expires_at);
                *kept = (*kept).max(expires_at);
            }
            Target::User {
                user_id,
                not_before,
            } => {
                let kept = state
                    .cutoffs
                    .entry(user_id)
                    .or_insert((not_before, expires_at));
                *kept = (kept.0.max(not_before), kept.1.max(expires_at));
            }
        }
        drop(state);
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Records that the feed spoke: any message, event or heartbeat.
    pub(crate) fn heard(&self, seq: u64, now: Now, heartbeat: bool) {
        self.last_seq.fetch_max(seq, Ordering::Relaxed);
        self.heard_at.store(now.mono_ms, Ordering::Release);
        if heartbeat {
            self.loaded.store(true, Ordering::Release);
        }
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Relaxed)
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Whether the picture can be vouched for: loaded once, and heard within `max_staleness_ms`
    /// (`None`: however long ago).
    pub(crate) fn is_fresh(&self, now: Now, max_staleness_ms: Option<u64>) -> bool {
        if !self.is_loaded() {
            return false;
        }
        max_staleness_ms.is_none_or(|max| {
            now.mono_ms
                .saturating_sub(self.heard_at.load(Ordering::Acquire))
                <= max
        })
    }

    /// The current epoch, read before a check whose result is to be remembered.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether a verified token is revoked: its session, its id, or every token of its user
    /// issued before a cutoff (`iat < not_before`, both in seconds, as latchkey's own rule).
    pub(crate) fn is_revoked(&self, claims: &Claims) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let cut = state
            .cutoffs
            .get(&claims.sub)
            .is_some_and(|(not_before, _)| claims.iat < *not_before);
        cut || state.sessions.contains_key(&claims.sid) || state.jtis.contains_key(&claims.jti)
    }

    /// [`Self::is_revoked`] for a token found clean at epoch `*clean_at`: no look at the maps
    /// unless something changed since, and `clean_at` moves forward when it is still clean.
    pub(crate) fn is_revoked_since(&self, claims: &Claims, clean_at: &AtomicU64) -> bool {
        let epoch = self.epoch();
        if clean_at.load(Ordering::Relaxed) == epoch {
            return false;
        }
        let revoked = self.is_revoked(claims);
        if !revoked {
            clean_at.fetch_max(epoch, Ordering::Relaxed);
        }
        revoked
    }

    /// Forgets events that can concern no valid token any more: past their `expires_at`, plus the
    /// verifier's own leeway (it accepts tokens that long after their `exp`).
    pub(crate) fn forget_expired(&self, now_unix: i64, leeway: i64) {
        let live = |expires_at: i64| now_unix < expires_at.saturating_add(leeway);
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.sessions.retain(|_, exp| live(*exp));
        state.jtis.retain(|_, exp| live(*exp));
        state.cutoffs.retain(|_, (_, exp)| live(*exp));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.sessions.len() + state.jtis.len() + state.cutoffs.len()
    }
}
