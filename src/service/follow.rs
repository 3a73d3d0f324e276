//! Keeping this process's revocation state and feed up to date with the store, for as long as the
//! server runs: a read of the store's feed every period (the safety net), at once when the store
//! signals a commit that this process has not seen (PostgreSQL's NOTIFY, from any replica), and
//! when an event written here waits for the events before it (see `feed_log`).

use std::{sync::Arc, time::Duration};

use tokio::time::MissedTickBehavior;
use tracing::warn;

use super::{Service, ServiceError};
use crate::store::{Signal, Signals, StoreResult};

impl Service {
    /// Never returns; the server runs it on a task of its own.
    pub async fn follow_revocations(self: Arc<Self>, period: Duration) {
        let mut signals = self.store.revocation_signals();
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.revocations.wanted() => {}
                signal = next(&mut signals) => match signal {
                    Some(Ok(Signal::Committed(seq))) if self.revocations.log().holds(seq) => continue,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        let e = ServiceError::from(e);
                        warn!(error = %e.chain(), "revocation listener failed; reconnecting");
                        continue;
                    }
                    None => {
                        signals = None;
                        continue;
                    }
                },
            }
            if let Err(e) = self.sync_revocations().await {
                warn!(error = %e.chain(), "revocation sync failed");
            }
        }
    }
}

/// The next signal, or never where the store sends none.
async fn next(signals: &mut Option<Signals>) -> Option<StoreResult<Signal>> {
    match signals {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}
