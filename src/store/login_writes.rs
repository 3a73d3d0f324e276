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

use rusqlite::{Connection, OpenFlags, ToSql, TransactionBehavior};
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
    /// durability, foreign keys, the same `busy_timeout`, and no checkpoints of its own.
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
            .and_then(|()| {
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
mod tests {
    use std::time::{Duration, Instant};

    use std::error::Error;

    use rusqlite::Connection;

    use super::{LoginWrites, SqliteLoginWrites};
    use crate::{
        domain::throttle,
        store::{Attempt, Mode, Store, StoreError, sql::SqlStore, sqlite},
    };

    async fn store() -> (tempfile::TempDir, SqlStore<sqlx::Sqlite>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let store = sqlite::connect(&url, Mode::Create).await.unwrap();
        (dir, store)
    }

    const BUSY: Duration = Duration::from_secs(5);

    const COUNTED: throttle::Record = throttle::Record {
        failures: 1,
        window_started_at: 1_000,
        locked_until: 0,
        lockouts: 0,
    };

    /// A login's write takes the writer's turn: while another write of the process holds it, the
    /// attempt waits, and is counted once the turn is free. On tokio's paused clock, which does not
    /// move while a blocking task runs: a write made without the turn finishes first.
    #[tokio::test]
    async fn a_login_write_waits_for_the_writers_turn() {
        let (_dir, store) = store().await;
        let login = store.login.as_deref().unwrap();
        let held = store.writer.acquire().await.unwrap();
        let counting = login.swap_throttle("alice", None, &COUNTED);
        tokio::pin!(counting);
        tokio::time::pause();
        let early = tokio::time::timeout(Duration::from_secs(1), &mut counting).await;
        assert!(early.is_err(), "written while another write held the turn");
        tokio::time::resume();
        drop(held);
        assert!(counting.await.unwrap());
        assert_eq!(store.throttle("alice").await.unwrap(), Some(COUNTED));
    }

    /// A throttle record with counts this code could not have written (edited by hand) is never
    /// taken as counted: the attempt is `Raced` (Login gives up on it as `OVERLOADED`), and the row
    /// stays as it was.
    #[tokio::test]
    async fn an_attempt_on_a_record_out_of_range_is_not_taken_as_counted() {
        let (dir, store) = store().await;
        let file = dir.path().join("latchkey.db");
        let edited = "INSERT INTO login_throttle \
             (username, failures, window_started_at, locked_until, lockouts) \
             VALUES ('alice', 1099511627776, 1000, 0, 0)";
        Connection::open(&file)
            .unwrap()
            .execute(edited, [])
            .unwrap();
        let policy = throttle::Policy::default();
        let attempt = store.count_attempt("alice", 2_000, &policy).await.unwrap();
        assert_eq!(attempt, Attempt::Raced);
        let failures: i64 = Connection::open(&file)
            .unwrap()
            .query_row("SELECT failures FROM login_throttle", [], |r| r.get(0))
            .unwrap();
        assert_eq!(failures, 1_099_511_627_776);
    }

    /// A transaction left open on the connection (a rollback that failed) is ended before the next
    /// write, which then commits as usual.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_left_open_is_ended_before_the_next_write() {
        let (dir, store) = store().await;
        let file = dir.path().join("latchkey.db");
        let writes = SqliteLoginWrites::open(&file, store.writer.clone(), BUSY).unwrap();
        writes.conn.lock().unwrap().execute_batch("BEGIN").unwrap();
        assert!(writes.swap_throttle("alice", None, &COUNTED).await.unwrap());
        assert_eq!(store.throttle("alice").await.unwrap(), Some(COUNTED));
    }

    /// The login's writes open the database again by its file: an in-memory one is refused at
    /// start, with a message that says what to use instead.
    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_a_clear_error() {
        let Err(refused) = sqlite::connect("sqlite::memory:", Mode::Create).await else {
            panic!("an in-memory database was opened");
        };
        let shown = format!("{refused}: {}", refused.source().unwrap());
        assert!(
            shown.contains("in-memory") && shown.contains("sqlite://"),
            "{shown}"
        );
    }

    /// Another process holding SQLite's write lock past the busy timeout makes a login's write
    /// fail as unavailable (a retry may succeed), having written nothing; once the lock is gone the
    /// same write goes in. SQLite's busy handler keeps real time: a short timeout keeps the test
    /// short.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_lock_held_elsewhere_past_the_timeout_is_unavailable() {
        let (dir, store) = store().await;
        let file = dir.path().join("latchkey.db");
        let timeout = Duration::from_millis(300);
        let login = SqliteLoginWrites::open(&file, store.writer.clone(), timeout).unwrap();
        let other = Connection::open(&file).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = Instant::now();
        let refused = login.swap_throttle("alice", None, &COUNTED).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(started.elapsed() >= timeout, "gave up early");
        other.execute_batch("COMMIT").unwrap();
        assert_eq!(store.throttle("alice").await.unwrap(), None);
        assert!(login.swap_throttle("alice", None, &COUNTED).await.unwrap());
        assert_eq!(store.throttle("alice").await.unwrap(), Some(COUNTED));
    }
}
