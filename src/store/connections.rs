//! Where a store's reads and writes go. On PostgreSQL, its pool: readers and writers of different
//! rows work at once. On SQLite, connections the store holds: one for every write, on which the
//! process's writers take turns, and a few for reads; callers get them in the order they came,
//! waiting at most [`WAIT`], as they would for a pool's.
//!
//! Held rather than checked out of a pool for each use: sqlx pings a pooled connection as it goes
//! back (and, unless told otherwise, as it is checked out), and on SQLite each ping is a hand-off
//! to the connection's thread and back, a context switch each way: a login paid seven of them,
//! four for its two writes and three for its reads and the event feed's read after it.
//!
//! A held connection found still in a transaction when the next caller takes it (its caller was
//! cancelled and the rollback is queued, or that rollback failed, which stops the connection's
//! thread) is closed, and a fresh one taken from the pool in its place.

use std::{
    ops::{Deref, DerefMut},
    sync::Arc,
    time::Duration,
};

use sqlx::{Connection, Database, Pool, pool::PoolConnection};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::StoreResult;

/// How long a caller waits for one of SQLite's held connections before failing as unavailable.
pub(super) const WAIT: Duration = Duration::from_secs(5);

pub(super) enum Connections<DB: Database> {
    /// A connection per use, checked out of the pool.
    Pool(Pool<DB>),
    /// Connections of a pool the store keeps checked out.
    Held(Arc<Held<DB>>),
}

/// Connections of `pool` (whose size is that of `slots`), each kept checked out in a slot of its
/// own. A caller first takes a turn, which tokio's semaphore grants in the order asked, then a
/// free slot: there is one for every turn. A slot is empty until its first use, and after its
/// connection is closed.
pub(super) struct Held<DB: Database> {
    pool: Pool<DB>,
    turns: Arc<Semaphore>,
    slots: Vec<Arc<Mutex<Option<PoolConnection<DB>>>>>,
}

/// A connection, for one statement or one transaction.
pub(super) enum Checkout<DB: Database> {
    Pooled(PoolConnection<DB>),
    Held(Turn<DB>),
}

/// A held connection, and the turn it was taken in; dropped in that order, so that the slot is
/// free by the time the next turn is granted.
pub(super) struct Turn<DB: Database> {
    conn: OwnedMappedMutexGuard<Option<PoolConnection<DB>>, PoolConnection<DB>>,
    _turn: OwnedSemaphorePermit,
}

impl<DB: Database> Connections<DB> {
    /// Holds the connections of `pool`, `size` of them (the pool's own bound).
    pub(super) fn hold(pool: Pool<DB>, size: usize) -> Self {
        Self::Held(Arc::new(Held {
            pool,
            turns: Arc::new(Semaphore::new(size)),
            slots: (0..size).map(|_| Arc::default()).collect(),
        }))
    }

    /// The pool the connections come from.
    pub(super) fn pool(&self) -> &Pool<DB> {
        match self {
            Self::Pool(pool) => pool,
            Self::Held(held) => &held.pool,
        }
    }

    /// A connection for the next statement or transaction; `Unavailable` after [`WAIT`] in line
    /// for a held one.
    pub(super) async fn acquire(&self) -> StoreResult<Checkout<DB>> {
        Ok(match self {
            Self::Pool(pool) => Checkout::Pooled(pool.acquire().await?),
            Self::Held(held) => Checkout::Held(
                tokio::time::timeout(WAIT, held.take_turn())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??,
            ),
        })
    }
}

impl<DB: Database> Held<DB> {
    /// A held connection once the callers before have been served: one kept, unless it was left
    /// in a transaction, else a fresh one of the pool's.
    async fn take_turn(&self) -> StoreResult<Turn<DB>> {
        let turn = self.turns.clone().acquire_owned().await;
        let turn = turn.map_err(|_| sqlx::Error::PoolClosed)?;
        let free = self
            .slots
            .iter()
            .find_map(|s| s.clone().try_lock_owned().ok());
        let mut slot = free.ok_or(sqlx::Error::PoolClosed)?;
        if let Some(mut left) = slot.take_if(|conn| conn.is_in_transaction()) {
            // Closed behind its queued rollback, if any; returned to the pool, it would come back
            // still in the transaction were that rollback to fail.
            left.close_on_drop();
        }
        if slot.is_none() {
            *slot = Some(self.pool.acquire().await?);
        }
        let conn = OwnedMutexGuard::try_map(slot, Option::as_mut);
        Ok(Turn {
            conn: conn.map_err(|_| sqlx::Error::PoolClosed)?,
            _turn: turn,
        })
    }
}

impl<DB: Database> Clone for Connections<DB> {
    fn clone(&self) -> Self {
        match self {
            Self::Pool(pool) => Self::Pool(pool.clone()),
            Self::Held(held) => Self::Held(held.clone()),
        }
    }
}

impl<DB: Database> Deref for Checkout<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Held(turn) => &turn.conn,
        }
    }
}

impl<DB: Database> DerefMut for Checkout<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Held(turn) => &mut turn.conn,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use sqlx::{Connection, Sqlite, SqliteConnection};

    use super::{Connections, WAIT};
    use crate::store::{Mode, StoreError, sqlite};

    /// A fresh SQLite store's held writer, with an empty scratch table.
    async fn writer() -> (Connections<Sqlite>, tempfile::TempDir) {
        let (_, writer, dir) = store().await;
        (writer, dir)
    }

    /// A fresh SQLite store's held readers and writer, with an empty scratch table.
    async fn store() -> (Connections<Sqlite>, Connections<Sqlite>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let store = sqlite::connect(&url, Mode::Create).await.unwrap();
        let (readers, writer) = (store.readers.clone(), store.writer.clone());
        assert!(matches!(writer, Connections::Held(_)));
        assert!(matches!(readers, Connections::Held(_)));
        sqlx::query("CREATE TABLE scratch (x INTEGER)")
            .execute(&mut *writer.acquire().await.unwrap())
            .await
            .unwrap();
        (readers, writer, dir)
    }

    async fn insert(conn: &mut SqliteConnection, x: i64) {
        let query = sqlx::query("INSERT INTO scratch VALUES ($1)").bind(x);
        query.execute(conn).await.unwrap();
    }

    async fn rows(writer: &Connections<Sqlite>) -> i64 {
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

    /// Writers wait for the one connection in turn, and one that has waited [`WAIT`] gives
    /// up as unavailable (STORE_UNAVAILABLE to its caller) instead of waiting on.
    #[tokio::test]
    async fn a_write_waits_its_turn_then_gives_up_as_unavailable() {
        let (writer, _dir) = writer().await;
        let held = writer.acquire().await.unwrap();
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        let Ok(Err(gave_up)) = tokio::time::timeout(WAIT * 2, writer.acquire()).await else {
            panic!("a second writer got the connection, or waited on, while the first held it");
        };
        assert!(matches!(gave_up, StoreError::Unavailable(_)), "{gave_up:?}");
        assert!(started.elapsed() >= WAIT, "{:?}", started.elapsed());

        // Two writers in line get the connection in the order they came.
        let (order, served) = tokio::sync::mpsc::unbounded_channel::<i32>();
        let mut waiting = Vec::new();
        for writer_no in [1, 2] {
            let (writer, order) = (writer.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let conn = writer.acquire().await.unwrap();
                order.send(writer_no).unwrap();
                tokio::time::sleep(WAIT / 10).await;
                drop(conn);
            }));
            tokio::time::sleep(WAIT / 10).await;
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

    /// A reader left inside a transaction is not used again: held on, it would keep answering
    /// from its old snapshot (a revoked session alive on it). The next read sees the latest write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_left_in_a_transaction_is_replaced_and_the_next_read_sees_the_latest_write() {
        let (readers, writer, _dir) = store().await;
        assert_eq!(rows(&readers).await, 0);
        let mut conn = readers.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scratch")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, 0);
        std::mem::forget(tx);
        drop(conn);

        insert(&mut writer.acquire().await.unwrap(), 1).await;
        assert_eq!(
            rows(&readers).await,
            1,
            "a read answered from a stale snapshot"
        );
    }

    /// Every reader busy, a read waits its turn and is served as soon as one is free, or gives up
    /// as unavailable after [`WAIT`].
    #[tokio::test]
    async fn a_read_waits_for_a_free_reader_then_gives_up_as_unavailable() {
        let (readers, _writer, _dir) = store().await;
        let mut busy = Vec::new();
        for _ in 0..sqlite::READERS {
            busy.push(readers.acquire().await.unwrap());
        }
        tokio::time::pause();
        let Ok(Err(gave_up)) = tokio::time::timeout(WAIT * 2, readers.acquire()).await else {
            panic!("a read got a connection, or waited on, while every reader was busy");
        };
        assert!(matches!(gave_up, StoreError::Unavailable(_)), "{gave_up:?}");

        let waiting = tokio::spawn(async move { rows(&readers).await });
        tokio::time::sleep(WAIT / 10).await;
        assert!(
            !waiting.is_finished(),
            "a read went ahead while every reader was busy"
        );
        busy.pop();
        assert_eq!(waiting.await.unwrap(), 0);
    }
}
