//! A login's session opened on SQLite, through rusqlite (see `login_writes.rs`): the statements
//! of `open_session.rs`, and of the feed and account events `sql.rs` and `events.rs` write with
//! them, in their order.

use rusqlite::{Connection, ToSql};

use super::{
    NewSession, SessionRecord, StoreError, StoreResult, queries as q,
    rows::session_revocations,
    sqlite_statements::{column, execute, take_seqs},
};
use crate::domain::{
    UnixMs,
    event::{EventKind, NewEvent},
    revocation::Revocation,
};

/// What a login's session writes, owned, for the blocking thread.
pub(super) struct Opening {
    session: SessionRecord,
    token_hash: Vec<u8>,
    username: String,
    checked_hash: String,
    rehashed: Option<String>,
    max_live_sessions: u32,
    events_expire_at: UnixMs,
    event: NewEvent,
}

impl From<&NewSession<'_>> for Opening {
    fn from(new: &NewSession<'_>) -> Self {
        Self {
            session: new.session.clone(),
            token_hash: new.token_hash.0.clone(),
            username: new.username.to_owned(),
            checked_hash: new.checked_hash.to_owned(),
            rehashed: new.rehashed.map(str::to_owned),
            max_live_sessions: new.max_live_sessions,
            events_expire_at: new.events_expire_at,
            event: new.event.clone(),
        }
    }
}

impl Opening {
    /// `open_session.rs`'s statements, in its order; `None` when the user is no longer as the
    /// login found it (nothing is then written).
    pub(super) fn write(&self, tx: &Connection) -> StoreResult<Option<Vec<Revocation>>> {
        let s = &self.session;
        let rehashed = self.rehashed.as_ref().unwrap_or(&self.checked_hash);
        let lock: [&dyn ToSql; 3] = [&s.user_id, &self.checked_hash, rehashed];
        if execute(tx, q::LOCK_USER_AS_CHECKED, &lock)? != 1 {
            return Ok(None);
        }
        let clear: [&dyn ToSql; 1] = [&self.username];
        execute(tx, q::CLEAR_THROTTLE, &clear)?;
        let cap = i64::from(self.max_live_sessions);
        let keep = i64::from(self.max_live_sessions.saturating_sub(1));
        let evict: [&dyn ToSql; 4] = [&s.created_at, &s.user_id, &cap, &keep];
        let evicted: Vec<String> = column(tx, q::EVICT_SESSIONS, &evict)?;
        let session: [&dyn ToSql; 12] = [
            &s.id,
            &s.user_id,
            &s.client_id,
            &s.device,
            &s.ip,
            &s.scope,
            &s.created_at,
            &s.last_used_at,
            &s.idle_expires_at,
            &s.absolute_expires_at,
            &s.generation,
            &s.sealed_token,
        ];
        execute(tx, q::INSERT_SESSION, &session)?;
        let token: [&dyn ToSql; 4] = [&self.token_hash, &s.id, &s.generation, &s.created_at];
        execute(tx, q::INSERT_TOKEN, &token)?;
        let revocations = self.evicted(tx, &evicted)?;
        let e = &self.event;
        let o = &e.origin;
        let seq = take_seqs(tx, q::TAKE_EVENT_SEQS, 1)?;
        let event: [&dyn ToSql; 10] = [
            &seq,
            &s.created_at,
            &e.user_id,
            &e.kind.as_str(),
            &o.session_id,
            &o.ip,
            &o.device,
            &o.client_id,
            &e.new_device_since,
            &e.detail,
        ];
        execute(tx, q::INSERT_EVENT, &event)?;
        Ok(Some(revocations))
    }

    /// The feed events and the account events of the sessions the cap revoked, each a run of
    /// numbers taken at once (as `sql.rs`'s `record_revoked` and `postgres_open_session.rs` do).
    fn evicted(&self, tx: &Connection, ids: &[String]) -> StoreResult<Vec<Revocation>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let s = &self.session;
        let json = serde_json::to_string(ids).map_err(|e| StoreError::Other(e.into()))?;
        let first = take_seqs(tx, q::TAKE_SEQS, ids.len())?;
        let feed: [&dyn ToSql; 4] = [&first, &self.events_expire_at, &s.created_at, &json];
        execute(tx, q::SQLITE_INSERT_SESSION_EVENTS, &feed)?;
        let first_event = take_seqs(tx, q::TAKE_EVENT_SEQS, ids.len())?;
        let o = &self.event.origin;
        let events: [&dyn ToSql; 8] = [
            &first_event,
            &s.created_at,
            &s.user_id,
            &EventKind::SessionEvicted.as_str(),
            &o.ip,
            &o.device,
            &o.client_id,
            &json,
        ];
        execute(tx, q::SQLITE_INSERT_SESSION_ACCOUNT_EVENTS, &events)?;
        Ok(session_revocations(first, ids, self.events_expire_at))
    }
}
