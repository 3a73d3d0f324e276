//! Housekeeping: deletes what no call can use any more, in small batches, so tables stay bounded,
//! and erases the sealed refresh tokens whose grace window has passed.

use std::time::Duration;

use tokio::time::Instant;

use super::{Service, ServiceResult};
use crate::store::Purge;

/// How long ended sessions are kept after their last possible use: so a late refresh still gets a
/// precise error (expired, revoked) rather than "unknown" for a while.
const KEEP_ENDED: i64 = 24 * 3_600_000;
/// Rows each statement of a round deletes at most: it starts at the largest, and halves while a
/// round takes longer than [`ROUND`] (down to the smallest), doubling again once rounds are quick.
/// The erasure of sealed tokens always takes the largest: it must keep pace with rotations (a
/// minute after its grace window, says the contract), whatever backlog is being purged.
const MAX_BATCH: i64 = 500;
const MIN_BATCH: i64 = 25;
/// The longest a round should hold the store. On SQLite each statement holds the one writer lock,
/// and a rotation waiting for it sleeps in the busy handler's growing steps: rounds of 80 ms every
/// 20 ms, as before this pacing, halved Refresh's rate while a large backlog was purged.
const ROUND: Duration = Duration::from_millis(20);
/// After a round, housekeeping waits this many times as long as the round took (and at least
/// [`BREATHER`]), so it has the store at most a quarter of the time.
const YIELD: u32 = 3;
const BREATHER: Duration = Duration::from_millis(20);

impl Service {
    /// Purges, round after round, until nothing is left to purge; returns the rows deleted or
    /// erased. Each round is paced by the time the last one took (see [`ROUND`] and [`YIELD`]), so
    /// a backlog of months is worked off without crowding out the request path.
    pub async fn housekeeping(&self) -> ServiceResult<u64> {
        let now = self.clock.now();
        let mut purge = Purge {
            sessions_ended_before: now - KEEP_ENDED - self.access_horizon(),
            // Past the grace window no retry can ask for a sealed token: erased, so that a copy of
            // the database and the master key together yield no token older than the window.
            sealed_rotated_before: now - self.settings.lifetimes.reuse_grace,
            events_expired_before: now,
            throttle_idle_before: now - self.settings.throttle.window,
            account_events_before: now - self.settings.event_retention,
            batch: MAX_BATCH,
            erase_batch: MAX_BATCH,
        };
        let mut total = 0;
        loop {
            let started = Instant::now();
            let deleted = self.store.purge(&purge).await?;
            let took = started.elapsed();
            total += deleted;
            if deleted == 0 {
                metrics::counter!("latchkey_purged_rows_total").increment(total);
                return Ok(total);
            }
            purge.batch = next_batch(purge.batch, took);
            tokio::time::sleep(BREATHER.max(took * YIELD)).await;
        }
    }
}

/// The batch for the next round, after one of `batch` rows took `took`.
fn next_batch(batch: i64, took: Duration) -> i64 {
    if took > ROUND {
        (batch / 2).max(MIN_BATCH)
    } else if took < ROUND / 4 {
        (batch * 2).min(MAX_BATCH)
    } else {
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_rounds_halve_the_batch_and_quick_ones_double_it_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(next_batch(500, ms(80)), 250);
        assert_eq!(next_batch(30, ms(80)), MIN_BATCH);
        assert_eq!(next_batch(100, ms(10)), 100, "inside the target: kept");
        assert_eq!(next_batch(100, ms(2)), 200);
        assert_eq!(next_batch(400, ms(2)), MAX_BATCH);
    }
}
