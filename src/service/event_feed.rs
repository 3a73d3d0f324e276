//! WatchEvents: account events in order, resumable by `seq`, from memory. One task per replica
//! reads the store's new events (at once when this process wrote one while a stream is open, else
//! every [`POLL`]: events written by other replicas, or here while no stream was open) into a
//! window of the most recent ones, shared by every stream; a stream that resumes from before the
//! window reads its backlog from the store, a page at a time, then joins the window. A heartbeat (an event with an empty kind, carrying the
//! last `seq` sent) goes out whenever there has been nothing to send for [`HEARTBEAT`], but only
//! while the store was read within [`STALE_AFTER`]: silence tells a reader it may be missing news.
//!
//! Streams are bounded as WatchRevocations' are (see `feed.rs`): a slot each from the same cap, a
//! buffer of 64 events, and a reader that leaves it full for the stall timeout is cut off with
//! `SubscriberTooSlow` (it resumes by `seq`).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use tokio::sync::{Notify, mpsc, watch};
use tracing::warn;

use super::{Feed, HEARTBEAT, Service, ServiceError, ServiceResult, error::poisoned};
use crate::{domain::event::AccountEvent, store::EventsPage};

/// How often the store is read for events other replicas wrote.
const POLL: Duration = Duration::from_millis(250);
/// Events kept in memory: a stream further behind reads the store.
const WINDOW: usize = 4096;
/// Events read from the store at once.
const PAGE: i64 = 500;
/// How long after the last good read of the store heartbeats stop (eight missed polls).
const STALE_AFTER: Duration = Duration::from_secs(2);

/// A WatchEvents stream: events, and heartbeats (`kind` and `user_id` empty, `seq` the last one
/// sent).
pub type EventStream = Feed<Arc<AccountEvent>>;

/// The most recent account events, as this replica has read them.
pub(super) struct EventLog {
    window: RwLock<VecDeque<Arc<AccountEvent>>>,
    /// The number of the newest event read.
    last: watch::Sender<i64>,
    /// Woken when this process has written an event.
    written: Notify,
    /// When the store was last read without error.
    read_at: Mutex<Option<Instant>>,
}

impl Default for EventLog {
    fn default() -> Self {
        Self {
            window: RwLock::default(),
            last: watch::Sender::new(0),
            written: Notify::new(),
            read_at: Mutex::new(None),
        }
    }
}

impl EventLog {
    /// Says an event was written here: the follower reads it at once while a stream is open to
    /// take it. With none open, the next poll brings it into the window: a login, say, then costs
    /// no read of the store for events nobody waits for.
    pub(super) fn nudge(&self) {
        if self.last.receiver_count() > 0 {
            self.written.notify_one();
        }
    }

    fn mark_read(&self) -> ServiceResult<()> {
        *self.read_at.lock().map_err(poisoned("event window"))? = Some(Instant::now());
        Ok(())
    }

    /// Whether the store was read lately enough for silence to mean "nothing new".
    fn fresh(&self) -> ServiceResult<bool> {
        let read_at = *self.read_at.lock().map_err(poisoned("event window"))?;
        Ok(read_at.is_some_and(|at| at.elapsed() < STALE_AFTER))
    }

    fn push(&self, events: Vec<AccountEvent>) -> ServiceResult<()> {
        let Some(newest) = events.last().map(|e| e.seq) else {
            return Ok(());
        };
        let mut window = self.window.write().map_err(poisoned("event window"))?;
        window.extend(events.into_iter().map(Arc::new));
        while window.len() > WINDOW {
            window.pop_front();
        }
        drop(window);
        self.last.send_replace(newest);
        Ok(())
    }

    /// The events after `after`, if the window reaches back to it; `None` if it does not.
    fn after(&self, after: i64) -> ServiceResult<Option<Vec<Arc<AccountEvent>>>> {
        let window = self.window.read().map_err(poisoned("event window"))?;
        let reaches = match window.front() {
            Some(oldest) => oldest.seq <= after.saturating_add(1),
            None => after >= *self.last.borrow(),
        };
        if !reaches {
            return Ok(None);
        }
        let start = window.partition_point(|e| e.seq <= after);
        Ok(Some(window.range(start..).cloned().collect()))
    }
}

impl Service {
    /// Follows the store's account events into memory; never returns (the server runs it on a
    /// task of its own). Starts from the newest event there is.
    pub async fn follow_events(self: Arc<Self>) {
        let mut last = None;
        loop {
            let read = match last {
                None => self.newest_event_seq().await.map(|seq| {
                    self.events.last.send_replace(seq);
                    last = Some(seq);
                }),
                Some(after) => self
                    .read_events(after)
                    .await
                    .map(|newest| last = Some(newest)),
            };
            if let Err(e) = read.and_then(|()| self.events.mark_read()) {
                warn!(error = %e.chain(), "reading account events failed");
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.events.written.notified() => {}
            }
        }
    }

    async fn newest_event_seq(&self) -> ServiceResult<i64> {
        let newest = self.store.events_page(&EventsPage {
            user_id: None,
            kinds: &[],
            before: i64::MAX,
            limit: 1,
        });
        Ok(newest.await?.first().map_or(0, |e| e.seq))
    }

    /// Reads what was written after `after` into the window; returns the newest number.
    async fn read_events(&self, mut after: i64) -> ServiceResult<i64> {
        loop {
            let events = self.store.events_after(after, PAGE).await?;
            let full = events.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
            after = events.last().map_or(after, |e| e.seq);
            self.events.push(events)?;
            if !full {
                return Ok(after);
            }
        }
    }

    /// Every account event after `after`, then each new one, until the reader drops the stream,
    /// falls too far behind, or `stop` completes. `Overloaded` beyond the streams' cap.
    pub fn watch_events(
        self: &Arc<Self>,
        after: i64,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> ServiceResult<EventStream> {
        let service = self.clone();
        self.open_feed("latchkey_event_watchers", stop, move |items| async move {
            service.pump_events(after, &items).await
        })
    }

    /// Sends one stream's events into its buffer; `Ok` when the reader is gone, an error when the
    /// stream must end with one (a reader too slow, a store that failed).
    async fn pump_events(
        &self,
        mut after: i64,
        items: &mpsc::Sender<Arc<AccountEvent>>,
    ) -> ServiceResult<()> {
        let mut changed = self.events.last.subscribe();
        loop {
            changed.borrow_and_update();
            let batch = match self.events.after(after)? {
                Some(batch) => batch,
                None => self
                    .store
                    .events_after(after, PAGE)
                    .await?
                    .into_iter()
                    .map(Arc::new)
                    .collect(),
            };
            if !batch.is_empty() {
                for event in batch {
                    after = event.seq;
                    if !self.deliver(items, event).await? {
                        return Ok(());
                    }
                }
                continue;
            }
            let quiet = tokio::time::timeout(HEARTBEAT, changed.changed()).await;
            if quiet.is_err()
                && self.events.fresh()?
                && !self.deliver(items, Arc::new(beat(after))).await?
            {
                return Ok(());
            }
        }
    }

    /// Puts one event in the buffer; `false` when the reader is gone, `SubscriberTooSlow` when it
    /// left the buffer full for the stall timeout.
    async fn deliver(
        &self,
        items: &mpsc::Sender<Arc<AccountEvent>>,
        event: Arc<AccountEvent>,
    ) -> ServiceResult<bool> {
        let stall = self.settings.feed.stall_timeout;
        match items.send_timeout(event, stall).await {
            Ok(()) => Ok(true),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                metrics::counter!("latchkey_event_watchers_cut_total").increment(1);
                Err(ServiceError::SubscriberTooSlow)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Ok(false),
        }
    }
}

/// A heartbeat: nothing new after `seq`.
fn beat(seq: i64) -> AccountEvent {
    AccountEvent {
        seq,
        at: 0,
        user_id: String::new(),
        kind: String::new(),
        session_id: String::new(),
        ip: String::new(),
        device: String::new(),
        client_id: String::new(),
        new_device: false,
        detail: String::new(),
    }
}
