//! Group commit of rotations on PostgreSQL (see `batch.rs`): the rotations that arrive together
//! are made by one statement (`queries::POSTGRES_ROTATE_ALL`), so in one round trip and one
//! commit, where each took its own.
//! It locks the batch's session rows that no other transaction holds, without waiting for the
//! others, runs `ROTATE`'s compare-and-swap on those and inserts the new tokens of the generations
//! it made, and answers which tokens went in and which sessions it skipped. Two rotations of one
//! generation in a batch are two racers: the row is updated once, through one of them, and only
//! that one's token goes in.
//!
//! A rotation whose session was skipped (another replica's revocation holds its row, say) is left
//! to its caller, which makes it in a transaction of its own that waits for the row as a rotation
//! always did (see `store_impl.rs`): it holds up no other, and as the batch's statement never
//! waits for a row, batches never wait on each other in a circle. If the statement fails (a token
//! already stored), nothing of it was written, and each of its rotations is left to its caller so,
//! so that the failure is its own rotation's alone. So is a rotation that records an account
//! event (a refresh from a new address), which the statement would not write.

use std::collections::HashSet;

use sqlx::Postgres;

use super::{
    Rotation, StoreError, StoreResult,
    batch::{Commit, RotationBatches},
    connections::Connections,
    queries as q,
};

/// Batches committed at once, each on a pooled connection of its own: while one commits, the next
/// gathers.
const TASKS: usize = 2;

/// Starts committing rotations through `writer`; the tasks end when the store is dropped.
pub(super) fn start(writer: Connections<Postgres>) -> RotationBatches {
    RotationBatches::start(PostgresCommit { writer }, TASKS)
}

struct PostgresCommit {
    writer: Connections<Postgres>,
}

#[async_trait::async_trait]
impl Commit for PostgresCommit {
    async fn commit(&self, batch: &[Rotation]) -> StoreResult<Vec<StoreResult<Option<bool>>>> {
        // The statement writes no account event: a rotation that records one is not in it.
        let plain: Vec<&Rotation> = batch.iter().filter(|r| r.event.is_none()).collect();
        let (made, skipped) = match self.rotate_all(&plain).await {
            Ok(outcome) => outcome,
            Err(unavailable @ StoreError::Unavailable(_)) => return Err(unavailable),
            // Nothing of it was written: each to be made on its own, so that the failure is its
            // own alone.
            Err(_) => return Ok(batch.iter().map(|_| Ok(None)).collect()),
        };
        Ok(batch
            .iter()
            .map(|r| {
                if r.event.is_some() {
                    Ok(None)
                } else if made.contains(&r.token_hash.0) {
                    Ok(Some(true))
                } else if skipped.contains(&r.session_id) {
                    Ok(None)
                } else {
                    Ok(Some(false))
                }
            })
            .collect())
    }
}

impl PostgresCommit {
    /// The rotations by one statement: the hashes of the tokens it inserted, and the sessions it
    /// skipped (held by another transaction, or not found); or the statement's error, having
    /// written nothing.
    async fn rotate_all(
        &self,
        batch: &[&Rotation],
    ) -> StoreResult<(HashSet<Vec<u8>>, HashSet<String>)> {
        if batch.is_empty() {
            return Ok(Default::default());
        }
        let column = |f: fn(&Rotation) -> i64| batch.iter().map(|r| f(r)).collect::<Vec<_>>();
        let rows: Vec<(Option<Vec<u8>>, Option<String>)> =
            sqlx::query_as(q::POSTGRES_ROTATE_ALL.as_str())
                .bind(
                    batch
                        .iter()
                        .map(|r| r.session_id.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(column(|r| r.expected_generation))
                .bind(column(|r| r.now))
                .bind(column(|r| r.idle_expires_at))
                .bind(
                    batch
                        .iter()
                        .map(|r| r.sealed_token.as_slice())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    batch
                        .iter()
                        .map(|r| r.token_hash.0.as_slice())
                        .collect::<Vec<_>>(),
                )
                .fetch_all(&mut *self.writer.acquire().await?)
                .await?;
        let (mut made, mut skipped) = (HashSet::new(), HashSet::new());
        for (hash, session) in rows {
            made.extend(hash);
            skipped.extend(session);
        }
        Ok((made, skipped))
    }
}
