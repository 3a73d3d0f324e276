//! Where a store's writes go. On PostgreSQL, its pool: writers of different rows work at once. On
//! SQLite, one connection that the store holds, on which the process's writers take turns in the
//! order they came, waiting at most [`WRITER_WAIT`], as they would in a pool of one connection.
//! Held rather than checked out of such a pool for each write: sqlx pings a pooled connection as
//! it goes back (and, unless told otherwise, as it is checked out), and on SQLite each ping is a
//! hand-off to the connection's thread and back; a login's two writes paid four of them.
//!
//! A held connection found still in a transaction when the next writer takes it (its caller was
//! cancelled and the rollback is queued, or that rollback failed, which stops the connection's
//! thread) is closed, and a fresh one taken from the pool in its place.

use std::{
    ops::{Deref, DerefMut},
    sync::Arc,
    time::Duration,
};

use sqlx::{Connection, Database, Pool, pool::PoolConnection};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::StoreResult;

/// How long a write waits for SQLite's one writer connection before failing as unavailable.
pub(super) const WRITER_WAIT: Duration = Duration::from_secs(5);

pub(super) enum Writer<DB: Database> {
    /// A connection per write, checked out of the pool.
    Pool(Pool<DB>),
    /// One connection of `pool` (a pool of one) for every write, in turn: tokio's mutex queues
    /// its waiters in order. Empty until the first write, and after a connection is closed.
    Held {
        pool: Pool<DB>,
        held: Arc<Mutex<Option<PoolConnection<DB>>>>,
    },
}

type Turn<DB> = OwnedMappedMutexGuard<Option<PoolConnection<DB>>, PoolConnection<DB>>;

/// A writer's connection, for one write or one transaction.
pub(super) enum WriterConnection<DB: Database> {
    Pooled(PoolConnection<DB>),
    Held(Turn<DB>),
}

impl<DB: Database> Writer<DB> {
    /// Holds a connection of `pool`, a pool of one: SQLite's writer.
    pub(super) fn hold(pool: Pool<DB>) -> Self {
        Self::Held {
            pool,
            held: Arc::new(Mutex::new(None)),
        }
    }

    /// The connection for the next write; `Unavailable` after [`WRITER_WAIT`] in line for the
    /// held one.
    pub(super) async fn acquire(&self) -> StoreResult<WriterConnection<DB>> {
        Ok(match self {
            Self::Pool(pool) => WriterConnection::Pooled(pool.acquire().await?),
            Self::Held { pool, held } => WriterConnection::Held(
                tokio::time::timeout(WRITER_WAIT, take_turn(pool, held.clone()))
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??,
            ),
        })
    }
}

/// The held connection once every writer before has done with it: the one held, unless it was
/// left in a transaction, else a fresh one of the pool's.
async fn take_turn<DB: Database>(
    pool: &Pool<DB>,
    held: Arc<Mutex<Option<PoolConnection<DB>>>>,
) -> StoreResult<Turn<DB>> {
    let mut turn = held.lock_owned().await;
    if let Some(mut left) = turn.take_if(|conn| conn.is_in_transaction()) {
        // Closed behind its queued rollback, if any; returned to the pool, it would come back
        // still in the transaction were that rollback to fail.
        left.close_on_drop();
    }
    if turn.is_none() {
        *turn = Some(pool.acquire().await?);
    }
    Ok(OwnedMutexGuard::try_map(turn, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed)?)
}

impl<DB: Database> Clone for Writer<DB> {
    fn clone(&self) -> Self {
        match self {
            Self::Pool(pool) => Self::Pool(pool.clone()),
            Self::Held { pool, held } => Self::Held {
                pool: pool.clone(),
                held: held.clone(),
            },
        }
    }
}

impl<DB: Database> Deref for WriterConnection<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Held(conn) => conn,
        }
    }
}

impl<DB: Database> DerefMut for WriterConnection<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Held(conn) => conn,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use sqlx::{Connection, Sqlite, SqliteConnection};

    use super::{WRITER_WAIT, Writer};
    use crate::store::{Mode, StoreError, sqlite};

    /// A fresh SQLite store's held writer, with an empty scratch table.
    async fn writer() -> (Writer<Sqlite>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let writer = sqlite::connect(&url, Mode::Create).await.unwrap().writer;
        assert!(matches!(writer, Writer::Held { .. }));
        sqlx::query("CREATE TABLE scratch (x INTEGER)")
            .execute(&mut *writer.acquire().await.unwrap())
            .await
            .unwrap();
        (writer, dir)
    }

    async fn insert(conn: &mut SqliteConnection, x: i64) {
        let query = sqlx::query("INSERT INTO scratch VALUES ($1)").bind(x);
        query.execute(conn).await.unwrap();
    }

    async fn rows(writer: &Writer<Sqlite>) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM scratch")
            .fetch_one(&mut *writer.acquire().await.unwrap())
            .await
            .unwrap()
    }

    /// The one connection outlives every caller: a transaction abandoned midway (its caller
    /// cancelled, as a client hanging up cancels a call) is rolled back, and the next write goes
    /// through on the same connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_abandoned_midway_leaves_nothing_and_the_writer_usable() {
        let (writer, _dir) = writer().await;
        let (inserted, wrote) = tokio::sync::oneshot::channel();
        let abandoned = tokio::spawn({
            let writer = writer.clone();
            async move {
                let mut conn = writer.acquire().await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                insert(&mut tx, 1).await;
                inserted.send(()).unwrap();
                pending::<()>().await;
            }
        });
        wrote.await.unwrap();
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        assert_eq!(rows(&writer).await, 0, "the abandoned insert was kept");

        let mut conn = writer.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        insert(&mut tx, 2).await;
        tx.commit().await.unwrap();
        drop(conn);
        assert_eq!(rows(&writer).await, 1);
    }

    /// A connection left inside a transaction (here one never ended: its rollback lost, as when
    /// the rollback of a cancelled caller fails) is not used again: the next write gets a fresh
    /// connection, commits for all to see, and the stray write is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_left_in_a_transaction_is_replaced() {
        let (writer, dir) = writer().await;
        let mut conn = writer.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        insert(&mut tx, 1).await;
        std::mem::forget(tx);
        drop(conn);

        insert(&mut writer.acquire().await.unwrap(), 2).await;
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let mut reader = SqliteConnection::connect(&url).await.unwrap();
        let seen: Vec<i64> = sqlx::query_scalar("SELECT x FROM scratch")
            .fetch_all(&mut reader)
            .await
            .unwrap();
        assert_eq!(seen, [2], "the next write is committed, the stray one gone");
    }

    /// Writers wait for the one connection in turn, and one that has waited [`WRITER_WAIT`] gives
    /// up as unavailable (STORE_UNAVAILABLE to its caller) instead of waiting on.
    #[tokio::test]
    async fn a_write_waits_its_turn_then_gives_up_as_unavailable() {
        let (writer, _dir) = writer().await;
        let held = writer.acquire().await.unwrap();
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        let Ok(Err(gave_up)) = tokio::time::timeout(WRITER_WAIT * 2, writer.acquire()).await else {
            panic!("a second writer got the connection, or waited on, while the first held it");
        };
        assert!(matches!(gave_up, StoreError::Unavailable(_)), "{gave_up:?}");
        assert!(started.elapsed() >= WRITER_WAIT, "{:?}", started.elapsed());

        // Two writers in line get the connection in the order they came.
        let (order, served) = tokio::sync::mpsc::unbounded_channel::<i32>();
        let mut waiting = Vec::new();
        for writer_no in [1, 2] {
            let (writer, order) = (writer.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let conn = writer.acquire().await.unwrap();
                order.send(writer_no).unwrap();
                tokio::time::sleep(WRITER_WAIT / 10).await;
                drop(conn);
            }));
            tokio::time::sleep(WRITER_WAIT / 10).await;
        }
        drop((held, order));
        for task in waiting {
            task.await.unwrap();
        }
        let (mut served, mut in_order) = (served, Vec::new());
        while let Some(writer_no) = served.recv().await {
            in_order.push(writer_no);
        }
        assert_eq!(in_order, [1, 2]);
    }
}
