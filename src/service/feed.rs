//! The revocation feed as WatchRevocations streams it: every event after a position, in order, then
//! each new one as it is committed. Events are read from the store, so a slow reader never misses
//! one: it just reads further behind.

use std::sync::Arc;

use tokio::sync::watch;

use super::{Service, ServiceError, ServiceResult};
use crate::domain::revocation::Revocation;

/// Events read from the store at once.
const BATCH: i64 = 500;

/// A reader of the revocation feed, from a position on. See [`Service::watch_revocations`].
pub struct RevocationWatch {
    service: Arc<Service>,
    /// The sequence number of the last event returned.
    after: i64,
    /// The newest sequence number this process has seen: wakes the reader once it is caught up.
    latest: watch::Receiver<i64>,
    caught_up: bool,
}

impl Service {
    /// A reader of every revocation event with a sequence number above `after`.
    pub fn watch_revocations(self: &Arc<Self>, after: i64) -> RevocationWatch {
        RevocationWatch {
            service: self.clone(),
            after,
            latest: self.revocations.subscribe(),
            caught_up: false,
        }
    }
}

impl RevocationWatch {
    /// The next events, in order, never empty: waits for new ones once caught up. Cancel-safe:
    /// dropped before it returns, it has consumed nothing.
    pub async fn next_events(&mut self) -> ServiceResult<Vec<Revocation>> {
        loop {
            if self.caught_up {
                let after = self.after;
                self.latest
                    .wait_for(|seen| *seen > after)
                    .await
                    .map_err(|_| ServiceError::internal("the revocation cache is gone"))?;
            }
            let events = self
                .service
                .store
                .revocations_after(self.after, BATCH)
                .await?;
            self.caught_up = events.len() < BATCH as usize;
            if let Some(last) = events.last() {
                self.after = last.seq;
                return Ok(events);
            }
        }
    }
}
