//! Group commit of rotations on SQLite (see `batch.rs`). SQLite has one writer at a time and
//! `synchronous = FULL` makes every commit wait for the disk, so a transaction per rotation caps
//! Refresh at one fsync each. Here the rotations that arrive together are made in one transaction,
//! in which one whose compare-and-swap fails (or whose statement errs) leaves the others in. If the
//! commit itself fails, nothing of the batch was written and every caller hears so.
//!
//! The WAL is checkpointed off that path: a commit that finds the WAL past SQLite's threshold
//! would otherwise copy its pages into the database file and fsync it before returning, with every
//! rotation of the next batch waiting (on a large store those pages are scattered over the file).
//! The writer's connection does not checkpoint (`wal_autocheckpoint = 0`); a task does, every
//! [`CHECKPOINT_EVERY`], on a reader's connection, in SQLite's passive mode, which never waits for
//! the writer nor makes it wait.

use std::time::Duration;

use sqlx::{Acquire, Connection, Sqlite, SqliteConnection};
use tokio::sync::mpsc::WeakSender;

use super::{
    Rotation, StoreResult,
    batch::{Commit, Job, RotationBatches},
    connections::Connections,
    sql::SqlStore,
};

/// How often the WAL is checkpointed. At the highest write rates seen here (about 5,000 rotations a
/// second), the WAL grows by a few MB in that time.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Starts committing rotations on `writer` (a connection that does not checkpoint), and the
/// checkpoints on `readers`; both end when the store is dropped.
pub(super) fn start(writer: Connections<Sqlite>, readers: Connections<Sqlite>) -> RotationBatches {
    let batches = RotationBatches::start(SqliteCommit { writer }, 1);
    tokio::spawn(checkpoint(readers, batches.alive()));
    batches
}

struct SqliteCommit {
    writer: Connections<Sqlite>,
}

#[async_trait::async_trait]
impl Commit for SqliteCommit {
    async fn commit(&self, batch: &[Rotation]) -> StoreResult<Vec<StoreResult<Option<bool>>>> {
        let answers = rotate_all(&mut *self.writer.acquire().await?, batch).await?;
        Ok(answers.into_iter().map(|a| a.map(Some)).collect())
    }
}

/// Checkpoints the WAL every [`CHECKPOINT_EVERY`] while the batches are taken (`alive`). A
/// checkpoint that fails (another process's, say, is running) is simply tried again next time.
async fn checkpoint(readers: Connections<Sqlite>, alive: WeakSender<Job>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        let done: StoreResult<_> = async {
            let checkpoint = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)");
            Ok(checkpoint.execute(&mut *readers.acquire().await?).await?)
        }
        .await;
        if let Err(e) = done {
            tracing::debug!(error = %e, "WAL checkpoint failed; trying again");
        }
    }
}

/// Every rotation of `batch` in one transaction; each one's answer, valid once this returns `Ok`.
/// A failed compare-and-swap writes nothing, so the rotations go in one after another; only if a
/// statement fails (a part of its rotation may then be written) is the batch made again, each
/// rotation in a savepoint of its own, so that the failure is that rotation's alone. Savepoints
/// for all would cost two more round trips to SQLite's thread per rotation, on the one writer.
async fn rotate_all(
    conn: &mut SqliteConnection,
    batch: &[Rotation],
) -> StoreResult<Vec<StoreResult<bool>>> {
    let mut tx = Connection::begin(&mut *conn).await?;
    let mut answers = Vec::with_capacity(batch.len());
    for rotation in batch {
        match SqlStore::<Sqlite>::rotate_in(&mut tx, rotation).await {
            Ok(made) => answers.push(Ok(made)),
            Err(_) => {
                tx.rollback().await?;
                return rotate_apart(conn, batch).await;
            }
        }
    }
    tx.commit().await?;
    Ok(answers)
}

/// [`rotate_all`] with each rotation in a savepoint: one whose statement fails leaves the others in.
async fn rotate_apart(
    conn: &mut SqliteConnection,
    batch: &[Rotation],
) -> StoreResult<Vec<StoreResult<bool>>> {
    let mut tx = Connection::begin(&mut *conn).await?;
    let mut answers = Vec::with_capacity(batch.len());
    for rotation in batch {
        let mut one = (&mut tx).begin().await?;
        let answer = SqlStore::<Sqlite>::rotate_in(&mut one, rotation).await;
        if matches!(answer, Ok(true)) {
            one.commit().await?;
        } else {
            one.rollback().await?;
        }
        answers.push(answer);
    }
    tx.commit().await?;
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::CHECKPOINT_EVERY;
    use crate::store::{Mode, sqlite};

    /// Writes reach the database file within moments, through the checkpoint task: the writer's
    /// connection never checkpoints, and SQLite's own threshold (4 MB of WAL) is far off.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_off_the_writers_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latchkey.db");
        let url = format!("sqlite://{}", file.display());
        let store = sqlite::connect(&url, Mode::Create).await.unwrap();
        let size = || std::fs::metadata(&file).unwrap().len();
        let before = size();
        sqlx::query("CREATE TABLE scratch (x BLOB)")
            .execute(&mut *store.writer.acquire().await.unwrap())
            .await
            .unwrap();
        // About 200 KB, through the writer.
        for _ in 0..50 {
            sqlx::query("INSERT INTO scratch VALUES (zeroblob(4096))")
                .execute(&mut *store.writer.acquire().await.unwrap())
                .await
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while size() < before + 150_000 {
            assert!(
                Instant::now() < deadline,
                "the WAL was not checkpointed into the database file ({} bytes)",
                size()
            );
            tokio::time::sleep(CHECKPOINT_EVERY).await;
        }
    }
}
