//! Persistence behind one trait. The backend is chosen once, from the database URL, by [`connect`];
//! nothing else knows which one runs. Every method is one atomic step: rotation is a single
//! compare-and-swap on a session's generation, revocations write their feed events and account
//! events in the same transaction.
//!
//! Where things are: `queries.rs` holds every statement, `rows.rs` the row mappings, `sql.rs` and
//! `store_impl.rs` the one generic implementation over sqlx (`SqlStore<DB>`), `open_session.rs` a
//! login's session, `login_writes.rs` a login's writes on SQLite (through rusqlite: the session's
//! in `sqlite_open_session.rs`, its statements run by `sqlite_statements.rs`), `renumber.rs`
//! statements made parts of one, `sqlite.rs` and `postgres.rs` only how each backend's pool is
//! opened, `connections.rs` where reads and writes go (SQLite's connections, held), `batch.rs`
//! the group commit of rotations (`sqlite_batch.rs`, `postgres_batch.rs` each backend's commit), `listen.rs` PostgreSQL's change signals (LISTEN/NOTIFY),
//! and `error.rs` how driver errors are sorted.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{
    UnixMs,
    event::{NewEvent, Origin},
    family::FamilyState,
    revocation::{Reason, Revocation},
    secret::Secret,
    throttle,
    types::TokenHash,
};

mod accounts;
mod batch;
mod connections;
mod error;
mod events;
mod listen;
mod login_writes;
mod migrate;
mod open_session;
mod postgres;
mod postgres_batch;
mod postgres_open_session;
pub mod queries;
mod renumber;
mod rows;
mod sql;
mod sqlite;
mod sqlite_batch;
mod sqlite_open_session;
mod sqlite_statements;
mod store_impl;

pub use accounts::{AccountStore, EventsPage, UsersPage};
pub use error::{StoreError, StoreResult};

/// What a change signal says (see [`Store::revocation_signals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A transaction committed revocations numbered up to this one.
    Committed(i64),
    /// Signals may have been missed (the listener has just connected, or connected again after
    /// losing its connection): whoever relies on them should read the feed now.
    Resync,
}

/// Change signals as they come; an error says the listener lost its connection (it reconnects by
/// itself, then sends [`Signal::Resync`]).
pub type Signals = tokio::sync::mpsc::Receiver<StoreResult<Signal>>;

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub password_hash: Secret<String>,
    pub scopes: Vec<String>,
    pub disabled: bool,
    pub not_before: UnixMs,
    pub created_at: UnixMs,
}

/// A login attempt as [`Store::count_attempt`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The name is locked until then: nothing was counted.
    Locked(UnixMs),
    /// Counted against the name (`record`: the name's record with it); `user`: the user of that
    /// name, if there is one.
    Counted {
        record: throttle::Record,
        user: Option<UserRecord>,
    },
    /// Another attempt changed the name's record between this one's read and its write: nothing
    /// was counted, and counting again reads the new record.
    Raced,
}

/// A session as its table holds it (hence the derived row mapping).
#[derive(Debug, Clone, PartialEq, Eq, sqlx_macros::FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub device: String,
    pub ip: String,
    pub scope: String,
    pub created_at: UnixMs,
    pub last_used_at: UnixMs,
    pub idle_expires_at: UnixMs,
    pub absolute_expires_at: UnixMs,
    pub revoked_at: Option<UnixMs>,
    pub generation: i64,
    pub rotated_at: Option<UnixMs>,
    /// The live refresh token sealed, while a retry may still ask for it (see `Rotation`); empty
    /// otherwise: for the first token of a session, and once housekeeping erased it.
    pub sealed_token: Vec<u8>,
}

impl SessionRecord {
    /// What the token-family rules need to know of this session.
    pub fn family(&self) -> FamilyState {
        FamilyState {
            generation: self.generation,
            rotated_at: self.rotated_at,
            idle_expires_at: self.idle_expires_at,
            absolute_expires_at: self.absolute_expires_at,
            revoked: self.revoked_at.is_some(),
        }
    }
}

/// A refresh token found: its session, the generation it was issued at, and the scopes its user
/// holds now (a refresh never grants more than those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRefresh {
    pub session: SessionRecord,
    pub generation: i64,
    pub user_scopes: Vec<String>,
}

/// A session to open, and what the login that opens it checked.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub session: &'a SessionRecord,
    /// The hash of its first refresh token.
    pub token_hash: &'a TokenHash,
    /// The name the login was made under: its throttle record (the attempt counted before the
    /// password check) is cleared in the same step.
    pub username: &'a str,
    /// The user's password hash that the login checked: the session opens only while it is there.
    pub checked_hash: &'a str,
    /// The password hashed again under today's argon2 parameters, stored in the same step in place
    /// of `checked_hash`. Made with the same salt, so concurrent logins bring the same value, and
    /// a login that finds it there already opens its session as well.
    pub rehashed: Option<&'a str>,
    /// The live sessions the user may hold, this one included: the least recently used beyond
    /// it are revoked.
    pub max_live_sessions: u32,
    /// When the feed events of sessions revoked by the cap may be forgotten.
    pub events_expire_at: UnixMs,
    /// The login's account event (with `new_device_since`); sessions revoked by the cap get a
    /// `session_evicted` event each, with the same origin.
    pub event: &'a NewEvent,
}

/// Spend generation `expected_generation` of a session and make `token_hash` its live token.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub session_id: String,
    pub expected_generation: i64,
    pub token_hash: TokenHash,
    /// The new token sealed, for retries of the one spent; empty when retries are disabled.
    pub sealed_token: Vec<u8>,
    pub now: UnixMs,
    pub idle_expires_at: UnixMs,
    /// Written with the rotation, when there is something to record (`refresh_ip_changed`).
    pub event: Option<NewEvent>,
}

/// Revoke every live session of a user and set the user's cutoff.
#[derive(Debug, Clone)]
pub struct UserRevocation {
    pub user_id: String,
    pub now: UnixMs,
    /// Cutoff for the user's access tokens (whole seconds, as `iat` is, in ms).
    pub not_before: UnixMs,
    /// When the feed events may be forgotten.
    pub expires_at: UnixMs,
    /// The account event, written in the same transaction; the store adds to its detail how many
    /// sessions were revoked.
    pub event: NewEvent,
    /// Applied in the same transaction, before the sessions are revoked: a new password hash.
    pub new_password_hash: Option<String>,
    /// Applied in the same transaction: the user is disabled.
    pub disable: bool,
    /// Applied in the same transaction, after the revocation: the user, its sessions and their
    /// refresh tokens are deleted (the feed and account events stay).
    pub delete: bool,
    /// A session left alive (the caller's, on ChangePassword); then no cutoff is set, so that its
    /// tokens stay good, and the others die with their sessions.
    pub keep_session: Option<String>,
}

/// A signing key as its table holds it (hence the derived row mapping).
#[derive(Debug, Clone, sqlx_macros::FromRow)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    pub sealed_private: Vec<u8>,
    pub created_at: UnixMs,
}

/// What housekeeping may delete or erase: rows, and sealed tokens, whose every use has passed. Each
/// statement changes at most `batch` rows (`erase_batch` for the erasure), so no lock is held for
/// long.
#[derive(Debug, Clone, Copy)]
pub struct Purge {
    /// Sessions whose idle expiry or revocation is older than this, with all their refresh tokens
    /// (spent ones are kept until then, so that their reuse is caught for the session's whole life).
    pub sessions_ended_before: UnixMs,
    /// Sealed tokens of sessions rotated before this (the grace window has passed): erased.
    pub sealed_rotated_before: UnixMs,
    /// Feed events past their `expires_at`.
    pub events_expired_before: UnixMs,
    /// Throttle records whose window and lock both ended before this.
    pub throttle_idle_before: UnixMs,
    /// Account events recorded before this.
    pub account_events_before: UnixMs,
    pub batch: i64,
    /// Kept apart from `batch`, which housekeeping shrinks while working off a backlog: erasing
    /// sealed tokens must keep pace with rotations whatever the backlog.
    pub erase_batch: i64,
}

/// Everything the service keeps: sessions, tokens, revocations and keys here; users' listings and
/// account events in [`AccountStore`].
#[async_trait]
pub trait Store: AccountStore + Send + Sync + 'static {
    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates the user with its `user_created` event; `Conflict` when the name is taken.
    async fn create_user(&self, user: &UserRecord, event: &NewEvent) -> StoreResult<()>;
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>>;

    async fn throttle(&self, username: &str) -> StoreResult<Option<throttle::Record>>;
    /// Replaces the throttle record if it still is `expected` (`None`: there is none), so that
    /// concurrent failures on any number of replicas are all counted. `false` when it changed.
    async fn swap_throttle(
        &self,
        username: &str,
        expected: Option<&throttle::Record>,
        record: &throttle::Record,
    ) -> StoreResult<bool>;
    async fn clear_throttle(&self, username: &str) -> StoreResult<()>;
    /// A login's first step: counts an attempt against `username` as `throttle::count` does at
    /// `now` under `policy` (the record swapped as `swap_throttle` does), and reads the user of
    /// that name. On SQLite it is one transaction, which no other attempt can race; on PostgreSQL
    /// one statement reads the record and the user, and an attempt that lost the swap to another
    /// is `Raced`.
    async fn count_attempt(
        &self,
        username: &str,
        now: UnixMs,
        policy: &throttle::Policy,
    ) -> StoreResult<Attempt>;

    /// Opens a session with its first refresh token (generation 1), only while the user is enabled
    /// and still has the password hash the login checked (or already its re-hash): `None` when a
    /// password change or a disable got there first. It locks the user's row, so it serialises
    /// with `revoke_user`, which changes the row first: a session is either refused or revoked by
    /// the change, never left alive. In the same transaction, the user's least recently used live
    /// sessions beyond the cap are revoked (their feed events are returned) and the login's name
    /// has its throttle record cleared; a refused session clears nothing.
    async fn create_session(&self, new: &NewSession<'_>) -> StoreResult<Option<Vec<Revocation>>>;
    /// The session a refresh token belongs to, the token's generation and the user's scopes.
    async fn find_refresh(&self, hash: &TokenHash) -> StoreResult<Option<FoundRefresh>>;
    /// The compare-and-swap: `false` when the session moved on or was revoked meanwhile.
    async fn rotate(&self, rotation: &Rotation) -> StoreResult<bool>;
    /// Revokes one session, with its account event (of `reason`'s kind, from `origin`, which names
    /// the session); the feed
    /// event when it was live, `None` when it was already revoked (nothing is written then).
    async fn revoke_session(
        &self,
        session_id: &str,
        now: UnixMs,
        expires_at: UnixMs,
        reason: Reason,
        origin: &Origin,
    ) -> StoreResult<Option<Revocation>>;
    /// Records a revoked access token id on the feed.
    async fn revoke_jti(
        &self,
        jti: &str,
        now: UnixMs,
        expires_at: UnixMs,
    ) -> StoreResult<Revocation>;
    /// Applies the user change (password, disable), revokes every live session of the user and sets
    /// the cutoff, writes the account event (and deletes the user if asked), in one transaction of
    /// a bounded number of statements however many sessions there are; returns the feed events
    /// written (one per session, then the user cutoff).
    async fn revoke_user(&self, revocation: &UserRevocation) -> StoreResult<Vec<Revocation>>;
    /// Sessions of a user that are neither revoked nor expired at `now`, newest first.
    async fn live_sessions(&self, user_id: &str, now: UnixMs) -> StoreResult<Vec<SessionRecord>>;
    async fn count_live_sessions(&self, now: UnixMs) -> StoreResult<i64>;

    /// Feed events with `seq > after`, in order, at most `limit`.
    async fn revocations_after(&self, after: i64, limit: i64) -> StoreResult<Vec<Revocation>>;
    /// Signals of revocations committed by any process, where the database pushes them
    /// (PostgreSQL's LISTEN/NOTIFY, delivered at commit), from a listener of its own that stops
    /// when the receiver is dropped. `None` where it cannot (SQLite): revocations made by other
    /// processes are then found by reading the feed alone.
    fn revocation_signals(&self) -> Option<Signals>;

    /// Deletes one batch of each kind of dead row, and erases one batch of sealed tokens no retry
    /// can ask for; returns how many rows were deleted or changed.
    async fn purge(&self, purge: &Purge) -> StoreResult<u64>;

    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()>;
    /// All signing keys, oldest first.
    async fn keys(&self) -> StoreResult<Vec<KeyRecord>>;
}

/// Whether opening may create a SQLite database that is not there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `serve` and `migrate`: a new deployment starts here.
    Create,
    /// Every other command: a missing database is an error, not a fresh empty one.
    Existing,
}

/// Opens the store named by `url` (`sqlite://…` or `postgres://…`) and migrates it. The only place
/// that looks at which backend runs.
pub async fn connect(url: &str, mode: Mode) -> StoreResult<Arc<dyn Store>> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::connect(url, mode).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::connect(url).await?)),
        other => Err(StoreError::UnsupportedUrl(other.to_owned())),
    }
}
