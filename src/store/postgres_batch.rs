//! Group commit of rotations on PostgreSQL (see `batch.rs`): the rotations that arrive together
//! are made by one statement (`queries::POSTGRES_ROTATE_ALL`), so in one round trip and one
//! commit, where each took its own: `ROTATE`'s compare-and-swap over arrays of rotations, then the
//! new tokens of the generations it made; it answers which tokens went in. Two rotations of one
//! generation in a batch are two racers: the row is updated once, through one of them, and only
//! that one's token goes in. Rows are taken in session order, as any batch takes them, so that
//! batches of two replicas do not wait on each other in a circle.
//!
//! If the statement fails (a token already stored, a deadlock PostgreSQL broke), nothing of it was
//! written, and the rotations are made again one by one, so that the failure is its own rotation's
//! alone. A rotation that records an account event is made in a transaction of its own, as before.

use std::collections::HashSet;

use sqlx::{Acquire, Postgres};

use super::{
    Rotation, StoreError, StoreResult,
    batch::{Commit, RotationBatches, each_failed},
    connections::Connections,
    queries as q,
    sql::SqlStore,
};

/// Batches committed at once, each on a pooled connection of its own: while one commits, the next
/// gathers; and one batch that waits for a row another transaction holds does not hold up all.
const TASKS: usize = 2;

/// Starts committing rotations through `writer`; it ends when the store is dropped.
pub(super) fn start(writer: Connections<Postgres>) -> RotationBatches {
    RotationBatches::start(PostgresCommit { writer }, TASKS)
}

struct PostgresCommit {
    writer: Connections<Postgres>,
}

#[async_trait::async_trait]
impl Commit for PostgresCommit {
    async fn commit(&self, batch: &[Rotation]) -> StoreResult<Vec<StoreResult<bool>>> {
        let (plain, recorded): (Vec<_>, Vec<_>) =
            (0..batch.len()).partition(|&i| batch[i].event.is_none());
        let mut answers: Vec<Option<StoreResult<bool>>> = (0..batch.len()).map(|_| None).collect();
        let plain_rotations: Vec<&Rotation> = plain.iter().map(|&i| &batch[i]).collect();
        let made = match self.rotate_all(&plain_rotations).await {
            Ok(made) => made,
            Err(StoreError::Unavailable(cause)) => {
                each_failed(StoreError::Unavailable(cause), plain.len())
            }
            Err(_) => self.rotate_apart(&plain_rotations).await,
        };
        for (i, answer) in plain.into_iter().zip(made) {
            answers[i] = Some(answer);
        }
        for i in recorded {
            answers[i] = Some(self.rotate_recorded(&batch[i]).await);
        }
        Ok(answers.into_iter().flatten().collect())
    }
}

impl PostgresCommit {
    /// The rotations by one statement: each one's answer, or the statement's error.
    async fn rotate_all(&self, batch: &[&Rotation]) -> StoreResult<Vec<StoreResult<bool>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut sorted = batch.to_vec();
        sorted.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        let column = |f: fn(&Rotation) -> i64| sorted.iter().map(|r| f(r)).collect::<Vec<_>>();
        let made: Vec<Vec<u8>> = sqlx::query_scalar(q::POSTGRES_ROTATE_ALL.as_str())
            .bind(
                sorted
                    .iter()
                    .map(|r| r.session_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(column(|r| r.expected_generation))
            .bind(column(|r| r.now))
            .bind(column(|r| r.idle_expires_at))
            .bind(
                sorted
                    .iter()
                    .map(|r| r.sealed_token.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind(
                sorted
                    .iter()
                    .map(|r| r.token_hash.0.as_slice())
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut *self.writer.acquire().await?)
            .await?;
        let made: HashSet<Vec<u8>> = made.into_iter().collect();
        Ok(batch
            .iter()
            .map(|r| Ok(made.contains(&r.token_hash.0)))
            .collect())
    }

    /// The rotations one by one, each by `POSTGRES_ROTATE`: one that fails writes nothing.
    async fn rotate_apart(&self, batch: &[&Rotation]) -> Vec<StoreResult<bool>> {
        let mut answers = Vec::with_capacity(batch.len());
        for r in batch {
            answers.push(self.rotate_one(r).await);
        }
        answers
    }

    async fn rotate_one(&self, r: &Rotation) -> StoreResult<bool> {
        let rotated = SqlStore::<Postgres>::rotation(q::POSTGRES_ROTATE, r)
            .bind(&r.token_hash.0)
            .execute(&mut *self.writer.acquire().await?)
            .await?;
        Ok(rotated.rows_affected() == 1)
    }

    /// A rotation with its account event, in a transaction of its own.
    async fn rotate_recorded(&self, r: &Rotation) -> StoreResult<bool> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        if !SqlStore::<Postgres>::rotate_in(&mut tx, r).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}
