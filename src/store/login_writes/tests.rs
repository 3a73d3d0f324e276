use std::{
    error::Error,
    time::{Duration, Instant},
};

use rusqlite::{Connection, StatementStatus, ToSql};

use super::{LoginWrites, SqliteLoginWrites};
use crate::{
    domain::throttle,
    store::{
        Attempt, Mode, Store, StoreError, queries as q, sql::SqlStore, sqlite,
        sqlite_statements::column,
    },
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

/// A statement is prepared once, however often it runs with new values: SQLite would prepare
/// `EVICT_SESSIONS`, which binds its `LIMIT` and `OFFSET`, again at every login, were the login
/// connection's query plans not fixed when first made.
#[tokio::test]
async fn a_statement_binding_its_limit_is_not_prepared_again_at_each_run() {
    let (dir, store) = store().await;
    let file = dir.path().join("latchkey.db");
    let writes = SqliteLoginWrites::open(&file, store.writer.clone(), BUSY).unwrap();
    let conn = writes.conn.lock().unwrap();
    for (at, keep) in [(1_000_i64, 0_i64), (2_000, 1), (3_000, 2)] {
        let evict: [&dyn ToSql; 4] = [&at, &"alice", &100_i64, &keep];
        let evicted: Vec<String> = column(&conn, q::EVICT_SESSIONS, &evict).unwrap();
        assert!(evicted.is_empty());
    }
    let statement = conn.prepare_cached(q::EVICT_SESSIONS).unwrap();
    assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
}
