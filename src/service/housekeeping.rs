//! Housekeeping: deletes what no call can use any more, in small batches, so tables stay bounded,
//! and erases the sealed refresh tokens whose grace window has passed.

use std::time::Duration;

use super::{Service, ServiceResult};
use crate::store::Purge;

/// How long ended sessions are kept after their last possible use: so a late refresh still gets a
/// precise error (expired, revoked) rather than "unknown" for a while.
const KEEP_ENDED: i64 = 24 * 3_600_000;
const BATCH: i64 = 500;
/// Pause between batches, leaving the database to the request path.
const BREATHER: Duration = Duration::from_millis(20);

impl Service {
    /// Purges, batch after batch, until nothing is left to purge; returns the rows deleted or
    /// erased.
    pub async fn housekeeping(&self) -> ServiceResult<u64> {
        let now = self.clock.now();
        let purge = Purge {
            sessions_ended_before: now - KEEP_ENDED - self.access_horizon(),
            // Past the grace window no retry can ask for a sealed token: erased, so that a copy of
            // the database and the master key together yield no token older than the window.
            sealed_rotated_before: now - self.settings.lifetimes.reuse_grace,
            events_expired_before: now,
            throttle_idle_before: now - self.settings.throttle.window,
            account_events_before: now - self.settings.event_retention,
            batch: BATCH,
        };
        let mut total = 0;
        loop {
            let deleted = self.store.purge(&purge).await?;
            total += deleted;
            if deleted == 0 {
                metrics::counter!("latchkey_purged_rows_total").increment(total);
                return Ok(total);
            }
            tokio::time::sleep(BREATHER).await;
        }
    }
}
