//! The revocation feed in memory: every event this process has read or written, in `seq` order,
//! kept until it expires, as the store keeps them. WatchRevocations streams are served from here,
//! so the store is read once per process, not once per stream.
//!
//! The order must be the store's, gap for gap: a stream that has passed a number never goes back.
//! Events read from the store come in that order. An event written here is appended at once only
//! when it follows the last one held; otherwise another process wrote in between (or a concurrent
//! write here has not been offered yet), and it waits aside until a read of the store (or that
//! other write) fills the gap.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, RwLock},
};

use tokio::sync::watch;

use super::{ServiceResult, error::poisoned};
use crate::domain::{UnixMs, revocation::Revocation};

#[derive(Default)]
struct Log {
    events: VecDeque<Arc<Revocation>>,
    /// The number of the last event appended (events may have been forgotten since).
    last: i64,
    /// Events written here that do not follow `last` yet.
    waiting: BTreeMap<i64, Arc<Revocation>>,
}

impl Log {
    fn push(&mut self, event: Arc<Revocation>) {
        self.last = event.seq;
        self.events.push_back(event);
    }

    /// Appends the waiting events that now follow, and drops those already passed. Whether some
    /// still wait.
    fn settle(&mut self) -> bool {
        while let Some((&seq, _)) = self.waiting.first_key_value() {
            if seq > self.last + 1 {
                return true;
            }
            if let Some((_, event)) = self.waiting.pop_first()
                && seq == self.last + 1
            {
                self.push(event);
            }
        }
        false
    }
}

pub(super) struct FeedLog {
    log: RwLock<Log>,
    /// The number of the last event appended: streams wait on it.
    latest: watch::Sender<i64>,
}

impl Default for FeedLog {
    fn default() -> Self {
        Self {
            log: RwLock::default(),
            latest: watch::Sender::new(0),
        }
    }
}

impl FeedLog {
    /// Events read from the store, in its order: those past the last one held are appended (the
    /// store's own gaps are events it has forgotten). Whether events written here still wait.
    pub(super) fn extend(&self, events: &[Revocation]) -> ServiceResult<bool> {
        // Most reads find nothing new (Introspect catches up on every call): no write lock then.
        // An event still waiting was written after this read began, and asked for another.
        if events.last().is_none_or(|e| self.holds(e.seq)) {
            return Ok(false);
        }
        self.change(|log| {
            for event in events {
                if event.seq > log.last {
                    log.push(Arc::new(event.clone()));
                }
            }
        })
    }

    /// Events just written here, in order: appended at once where they follow the last one held.
    /// Whether some must wait for the store to be read.
    pub(super) fn offer(&self, events: &[Revocation]) -> ServiceResult<bool> {
        self.change(|log| {
            for event in events {
                if event.seq > log.last {
                    log.waiting.insert(event.seq, Arc::new(event.clone()));
                }
            }
        })
    }

    /// Makes `change` under the write lock and settles the log, then wakes the streams waiting for
    /// its new last event: outside the lock, so that the first woken do not block on it while the
    /// rest are being woken. Whether events written here still wait.
    fn change(&self, change: impl FnOnce(&mut Log)) -> ServiceResult<bool> {
        let (waiting, last) = {
            let mut log = self.log.write().map_err(poisoned("revocation feed"))?;
            change(&mut log);
            (log.settle(), log.last)
        };
        self.announce(last);
        Ok(waiting)
    }

    /// Forgets the events that have expired, oldest first: one that expires before an older one
    /// is kept until that one goes too (at most one access-token lifetime longer), which keeps
    /// this a queue.
    pub(super) fn forget_expired(&self, now: UnixMs) -> ServiceResult<()> {
        let expired = |log: &Log| log.events.front().is_some_and(|e| e.expires_at <= now);
        if !expired(&*self.log.read().map_err(poisoned("revocation feed"))?) {
            return Ok(());
        }
        let mut log = self.log.write().map_err(poisoned("revocation feed"))?;
        while log.events.front().is_some_and(|e| e.expires_at <= now) {
            log.events.pop_front();
        }
        Ok(())
    }

    /// Up to `max` events with `seq > after`, in order. Below the oldest kept, that is from the
    /// oldest kept on, as the store would answer.
    pub(super) fn after(&self, after: i64, max: usize) -> ServiceResult<Vec<Arc<Revocation>>> {
        let log = self.log.read().map_err(poisoned("revocation feed"))?;
        let start = log.events.partition_point(|e| e.seq <= after);
        Ok(log.events.range(start..).take(max).cloned().collect())
    }

    /// Whether the event numbered `seq` has been appended (or passed).
    pub(super) fn holds(&self, seq: i64) -> bool {
        *self.latest.borrow() >= seq
    }

    /// The number of the last event appended, as it changes.
    pub(super) fn subscribe(&self) -> watch::Receiver<i64> {
        self.latest.subscribe()
    }

    fn announce(&self, last: i64) {
        self.latest.send_if_modified(|seen| {
            let newer = last > *seen;
            *seen = (*seen).max(last);
            newer
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::revocation::RevocationTarget;

    fn event(seq: i64, expires_at: UnixMs) -> Revocation {
        Revocation {
            seq,
            target: RevocationTarget::Jti(format!("j{seq}")),
            expires_at,
        }
    }

    fn seqs(log: &FeedLog, after: i64) -> Vec<i64> {
        log.after(after, 100)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    }

    #[test]
    fn events_written_here_wait_for_the_gap_before_them_to_be_filled() {
        let log = FeedLog::default();
        assert!(!log.extend(&[event(1, 10)]).unwrap());
        assert!(!log.offer(&[event(2, 10)]).unwrap(), "follows: at once");
        assert!(log.offer(&[event(5, 10)]).unwrap(), "3 and 4 are missing");
        assert!(log.offer(&[event(4, 10)]).unwrap());
        assert_eq!(seqs(&log, 0), [1, 2]);
        assert!(!log.holds(4));
        // The store has 3 (written elsewhere) and 4; 5 was committed after it was read.
        assert!(!log.extend(&[event(3, 10), event(4, 10)]).unwrap());
        assert_eq!(seqs(&log, 0), [1, 2, 3, 4, 5]);
        assert!(log.holds(5));
    }

    #[test]
    fn the_store_gaps_are_kept_and_nothing_goes_back() {
        let log = FeedLog::default();
        log.extend(&[event(1, 10), event(4, 10)]).unwrap();
        log.extend(&[event(2, 10), event(6, 10)]).unwrap();
        log.offer(&[event(3, 10)]).unwrap();
        assert_eq!(seqs(&log, 0), [1, 4, 6]);
        assert_eq!(seqs(&log, 4), [6]);
        assert_eq!(seqs(&log, 5), [6]);
    }

    #[test]
    fn expired_events_are_forgotten_oldest_first() {
        let log = FeedLog::default();
        log.extend(&[event(1, 10), event(2, 30), event(3, 5), event(4, 40)])
            .unwrap();
        log.forget_expired(10).unwrap();
        assert_eq!(seqs(&log, 0), [2, 3, 4], "3 waits for 2");
        log.forget_expired(30).unwrap();
        assert_eq!(seqs(&log, 0), [4]);
        // Asked for what was forgotten: from the oldest kept on.
        assert_eq!(seqs(&log, 1), [4]);
        assert!(log.holds(4));
    }
}
