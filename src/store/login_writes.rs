//! A login's two writes on SQLite, the attempt counted before the password check and the session
//! opened after it, each made in one hand-off: a blocking thread runs the whole transaction on a
//! connection of rusqlite's to the same file, in the writer's turn (see `connections.rs`). The
//! attempt's transaction also reads what the login needs before its hash: the name's throttle
//! record and its user, so that nothing else is read before the password is checked, and no other
//! attempt can slip in between the read and the write. Through sqlx every statement is a hand-off
//! to the connection's thread and back, about a dozen per session opened; and both writes go
//! through this one connection, so that from one login to the next its page cache stays warm while
//! nothing else writes (SQLite drops a connection's cache whenever another connection has written
//! since its last transaction: a rotation between two logins costs each connection a re-read of its
//! pages). With a trivial hash this cut the server's CPU per login outside the hash by 11-13 %, and
//! the reads' move into the attempt's transaction by about another 11 % (BENCHMARKS.md).
//! PostgreSQL opens a session in one call of a function (`postgres_open_session.rs`), reads the
//! record and the user in one statement, and counts an attempt as every other write.
//!
//! The statements are those of `queries.rs` (the session's in `sqlite_open_session.rs`); the other
//! writes stay on sqlx's writer connection.
//!
//! A caller that goes away while its transaction runs does not stop it: the turn is released once
//! it has committed or rolled back.

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, ToSql, TransactionBehavior, config::DbConfig};
use sqlx::Sqlite;

use super::{
    Attempt, NewSession, StoreError, StoreResult, UserRecord,
    connections::{Checkout, Connections},
    queries as q,
    rows::{ThrottleRow, UserRow},
    sqlite_open_session::Opening,
    sqlite_statements::{execute, first_row},
};
use crate::domain::{UnixMs, revocation::Revocation, throttle};

/// Makes a login's writes apart from the store's writer ([`SqliteLoginWrites`] on SQLite).
#[async_trait::async_trait]
pub(super) trait LoginWrites: Send + Sync {
    /// `Store::swap_throttle`.
    async fn swap_throttle(
        &self,
        username: &str,
        expected: Option<&throttle::Record>,
        r: &throttle::Record,
    ) -> StoreResult<bool>;

    /// `Store::count_attempt`, in one transaction: never `Raced`.
    async fn count_attempt(
        &self,
        username: &str,
        now: UnixMs,
        policy: &throttle::Policy,
    ) -> StoreResult<Attempt>;

    /// `Store::create_session`.
    async fn open_session(&self, new: &NewSession<'_>) -> StoreResult<Option<Vec<Revocation>>>;
}

/// The connection the login's writes are made on, and the writer whose turns they take.
pub(super) struct SqliteLoginWrites {
    conn: Arc<Mutex<Connection>>,
    writer: Connections<Sqlite>,
}

impl SqliteLoginWrites {
    /// Opens `file` (already created and migrated) as the writer's connection is opened: full
    /// durability, foreign keys, the same `busy_timeout`, and no checkpoints of its own. Its query
    /// plans are made once, when a statement is first prepared, whatever is later bound to it
    /// (SQLite's query planner stability guarantee): otherwise SQLite prepares again, on every
    /// execution, a statement that binds its `LIMIT` or `OFFSET` (`EVICT_SESSIONS`, each login).
    pub(super) fn open(
        file: &Path,
        writer: Connections<Sqlite>,
        busy_timeout: Duration,
    ) -> StoreResult<Self> {
        let conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::open("opening the login writes' connection", e))?;
        conn.busy_timeout(busy_timeout)
            .and_then(|()| conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true))
            .and_then(|_| {
                conn.execute_batch(
                    "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = 0;",
                )
            })
            .map_err(|e| StoreError::open("setting up the login writes' connection", e))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            writer,
        })
    }

    /// Runs `work` in a transaction on a blocking thread, in the writer's turn, which is held
    /// until it has committed or rolled back.
    async fn in_turn<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<Option<T>> + Send + 'static,
    ) -> StoreResult<Option<T>> {
        let turn: Checkout<Sqlite> = self.writer.acquire().await?;
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            // Poisoned only by a panic inside `work`, whose transaction rolled back as it unwound.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            // A transaction still open (its rollback failed as it was dropped) is ended first: the
            // next `BEGIN` would fail, and SQLite's write lock stay held.
            if !conn.is_autocommit() {
                conn.execute_batch("ROLLBACK")?;
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done = work(&tx)?;
            if done.is_some() {
                tx.commit()?;
            }
            Ok(done)
        })
        .await
        .map_err(|e| StoreError::Other(e.into()))?
    }
}

#[async_trait::async_trait]
impl LoginWrites for SqliteLoginWrites {
    async fn swap_throttle(
        &self,
        username: &str,
        expected: Option<&throttle::Record>,
        r: &throttle::Record,
    ) -> StoreResult<bool> {
        let (username, expected, r) = (username.to_owned(), expected.copied(), *r);
        let swapped =
            self.in_turn(move |tx| Ok(Some(write_throttle(tx, &username, expected.as_ref(), &r)?)));
        Ok(swapped.await? == Some(true))
    }

    async fn count_attempt(
        &self,
        username: &str,
        now: UnixMs,
        policy: &throttle::Policy,
    ) -> StoreResult<Attempt> {
        let (username, policy) = (username.to_owned(), *policy);
        let attempt = self.in_turn(move |tx| {
            let name: [&dyn ToSql; 1] = [&username];
            let record = first_row(tx, q::THROTTLE, &name, ThrottleRow::from_rusqlite)?
                .map(throttle::Record::from);
            let counted = match throttle::count(record.as_ref(), now, &policy) {
                Ok(counted) => counted,
                // Nothing written: the commit that follows is empty. A flood of attempts on a
                // locked name takes the writer's turns with these, but at most as many at once as
                // the hashing queue admits (each holds its place meanwhile).
                Err(until) => return Ok(Some(Attempt::Locked(until))),
            };
            // The write lock is held from the read, so only a row this code could not have written
            // (counts beyond `u32`, which reading saturates) fails the swap: `Raced`, as on
            // PostgreSQL, and Login gives up on it as `OVERLOADED` rather than check uncounted.
            if !write_throttle(tx, &username, record.as_ref(), &counted)? {
                return Ok(Some(Attempt::Raced));
            }
            let user = first_row(tx, q::USER_BY_NAME, &name, UserRow::from_rusqlite)?;
            Ok(Some(Attempt::Counted {
                record: counted,
                user: user.map(UserRecord::from),
            }))
        });
        // The transaction above always answers; were it not to, counting again is safe.
        Ok(attempt.await?.unwrap_or(Attempt::Raced))
    }

    async fn open_session(&self, new: &NewSession<'_>) -> StoreResult<Option<Vec<Revocation>>> {
        let opening = Opening::from(new);
        self.in_turn(move |tx| opening.write(tx)).await
    }
}

/// `INSERT_THROTTLE` (`expected`: `None`) or `SWAP_THROTTLE`: whether `r` went in.
fn write_throttle(
    tx: &rusqlite::Transaction<'_>,
    username: &str,
    expected: Option<&throttle::Record>,
    r: &throttle::Record,
) -> StoreResult<bool> {
    let new = columns(r);
    let changed = if let Some(old) = expected {
        let old = columns(old);
        let values: [&dyn ToSql; 9] = [
            &new[0], &new[1], &new[2], &new[3], &username, &old[0], &old[1], &old[2], &old[3],
        ];
        execute(tx, q::SWAP_THROTTLE, &values)?
    } else {
        let values: [&dyn ToSql; 5] = [&new[0], &new[1], &new[2], &new[3], &username];
        execute(tx, q::INSERT_THROTTLE, &values)?
    };
    Ok(changed == 1)
}

/// A throttle record's columns, as `INSERT_THROTTLE` and `SWAP_THROTTLE` take them.
fn columns(r: &throttle::Record) -> [i64; 4] {
    [
        i64::from(r.failures),
        r.window_started_at,
        r.locked_until,
        i64::from(r.lockouts),
    ]
}

#[cfg(test)]
mod tests;
