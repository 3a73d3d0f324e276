//! WatchRevocations: every event after a position, from the feed in memory (see `feed_log`), then
//! each new one as this process learns of it, and a heartbeat whenever there has been nothing to
//! send for [`HEARTBEAT`]. No stream ever reads the store.
//!
//! Streams are bounded: at most `max_watchers` at once (beyond, `Overloaded`), each pumped by a
//! task of its own into a buffer of [`BUFFER`] items. A reader that leaves that buffer full for
//! `stall_timeout` is cut off with `SubscriberTooSlow` and resumes by `seq`, so a stalled reader
//! never holds more than a buffer's worth of memory, nor holds it for long.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    sync::{
        OwnedSemaphorePermit,
        mpsc::{self, error::TrySendError},
        oneshot,
    },
    time::Instant,
};
use tokio_stream::Stream;

use super::{Service, ServiceError, ServiceResult};
use crate::domain::revocation::Revocation;

/// Items a stream buffers before its reader has taken them.
const BUFFER: usize = 64;
/// The longest silence on a stream that is up to date: the contract says at least one heartbeat a
/// second, and this leaves room for a busy scheduler.
pub const HEARTBEAT: Duration = Duration::from_millis(800);

/// Bounds on WatchRevocations streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLimits {
    /// Streams open at once.
    pub max_watchers: usize,
    /// How long a stream's buffer may stay full before its reader is cut off.
    pub stall_timeout: Duration,
}

/// What a stream sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedItem {
    Event(Arc<Revocation>),
    /// Nothing new: the reader has everything this process knows, up to the event numbered `seq`
    /// (the last one sent, or the position asked for). Sent only while the revocation state is
    /// fresh, so that silence tells a reader that its picture may be stale.
    Heartbeat {
        seq: i64,
    },
}

/// How the feed is doing, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStats {
    /// Streams open now.
    pub watchers: usize,
    /// Reads of the store's feed since start, for every purpose (syncs, Introspect's catch-up).
    pub store_reads: u64,
}

/// A stream's place among the open ones (WatchRevocations and WatchEvents share the cap), counted
/// on its gauge, held while its pump runs: a reader that went away is noticed at its stream's next
/// event or heartbeat, within a second.
struct Slot {
    _permit: OwnedSemaphorePermit,
    gauge: &'static str,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, gauge: &'static str) -> Self {
        metrics::gauge!(gauge).increment(1.0);
        Self {
            _permit: permit,
            gauge,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!(self.gauge).decrement(1.0);
    }
}

impl Service {
    /// A stream of every revocation event with a sequence number above `after`, until the reader
    /// drops it, falls too far behind, or `stop` completes. `Overloaded` when `max_watchers`
    /// streams are open already.
    pub fn watch_revocations(
        self: &Arc<Self>,
        after: i64,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> ServiceResult<RevocationFeed> {
        let service = self.clone();
        self.open_feed("latchkey_revocation_watchers", stop, move |items| {
            Pump {
                service,
                after,
                items,
            }
            .run()
        })
    }

    /// Opens a stream (WatchRevocations, WatchEvents): takes a slot among the open ones
    /// (`Overloaded` when none is left), counted on `gauge`, then runs `pump` on a task of its own
    /// into the stream's buffer of [`BUFFER`] items, until it ends or `stop` completes. Its error,
    /// if any, ends the stream once what it buffered has been read.
    pub(super) fn open_feed<T, P>(
        &self,
        gauge: &'static str,
        stop: impl Future<Output = ()> + Send + 'static,
        pump: impl FnOnce(mpsc::Sender<T>) -> P,
    ) -> ServiceResult<Feed<T>>
    where
        P: Future<Output = ServiceResult<()>> + Send + 'static,
    {
        let permit = self.watchers.clone().try_acquire_owned();
        let slot = Slot::new(permit.map_err(|_| ServiceError::Overloaded)?, gauge);
        let (items, buffered) = mpsc::channel(BUFFER);
        let (ended, end) = oneshot::channel();
        let pumped = pump(items);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                pumped = pumped => if let Err(e) = pumped {
                    let _ = ended.send(e);
                },
                () = stop => {}
            }
        });
        Ok(Feed::new(buffered, end))
    }

    pub fn feed_stats(&self) -> FeedStats {
        FeedStats {
            watchers: self.settings.feed.max_watchers - self.watchers.available_permits(),
            store_reads: self.revocations.reads(),
        }
    }
}

/// Sends one stream's items into its buffer.
struct Pump {
    service: Arc<Service>,
    /// The number of the last event sent (or the position asked for).
    after: i64,
    items: mpsc::Sender<FeedItem>,
}

impl Pump {
    /// Runs until the reader is gone (`Ok`) or must be cut off. Per event, it wakes once, takes
    /// one read lock and moves no timer: with thousands of streams, this loop is the cost of a
    /// revocation.
    async fn run(mut self) -> ServiceResult<()> {
        let mut latest = self.service.revocations.log().subscribe();
        // One timer, moved only when it rings: a heartbeat is then due unless an event went out
        // less than `HEARTBEAT` ago. The first one is owed as soon as the backlog has been sent:
        // it tells the reader that it has caught up.
        let heartbeat = tokio::time::sleep(HEARTBEAT);
        tokio::pin!(heartbeat);
        let (mut owed, mut last_sent) = (true, Instant::now());
        loop {
            let events = self.service.revocations.log().after(self.after, BUFFER)?;
            if !events.is_empty() {
                for event in events {
                    let seq = event.seq;
                    if !self.send(FeedItem::Event(event)).await? {
                        return Ok(());
                    }
                    self.after = seq;
                }
                last_sent = Instant::now();
                continue;
            }
            if owed {
                heartbeat.as_mut().reset(Instant::now());
            }
            let after = self.after;
            let rang = tokio::select! {
                moved = latest.wait_for(|last| *last > after) => {
                    moved.map_err(|_| ServiceError::internal("the revocation feed is gone"))?;
                    false
                }
                () = heartbeat.as_mut() => true,
            };
            let due = last_sent + HEARTBEAT;
            if !rang {
                continue;
            } else if !owed && due > Instant::now() {
                heartbeat.as_mut().reset(due);
                continue;
            }
            owed = false;
            // A reader gone while the stream was idle is noticed here, at the latest.
            let fresh = self.service.revocations.check_fresh().is_ok();
            let sent = fresh && self.send(FeedItem::Heartbeat { seq: after }).await?;
            if !sent && self.items.is_closed() {
                return Ok(());
            }
            last_sent = Instant::now();
            heartbeat.as_mut().reset(last_sent + HEARTBEAT);
        }
    }

    /// Buffers one item; `false` when the reader is gone.
    async fn send(&self, item: FeedItem) -> ServiceResult<bool> {
        // Mostly there is room: no timer then.
        let permit = match self.items.try_reserve() {
            Ok(permit) => permit,
            Err(TrySendError::Closed(())) => return Ok(false),
            Err(TrySendError::Full(())) => {
                let stall = self.service.settings.feed.stall_timeout;
                match tokio::time::timeout(stall, self.items.reserve()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return Ok(false),
                    Err(_) => {
                        metrics::counter!("latchkey_revocation_watchers_cut_total").increment(1);
                        return Err(ServiceError::SubscriberTooSlow);
                    }
                }
            }
        };
        permit.send(item);
        Ok(true)
    }
}

/// The items of one stream (WatchRevocations, WatchEvents), as its reader takes them; see
/// [`Service::watch_revocations`]. Ends with an error when the stream was cut off (what was still
/// buffered is dropped: the reader resumes after the last event it received).
pub struct Feed<T> {
    buffered: mpsc::Receiver<T>,
    /// Why the pump stopped, if it failed.
    end: Option<oneshot::Receiver<ServiceError>>,
    done: bool,
}

/// A WatchRevocations stream.
pub type RevocationFeed = Feed<FeedItem>;

impl<T> Feed<T> {
    /// The stream of what a pump puts in `buffered`, ended by what it sends on `end` (if it fails).
    fn new(buffered: mpsc::Receiver<T>, end: oneshot::Receiver<ServiceError>) -> Self {
        Self {
            buffered,
            end: Some(end),
            done: false,
        }
    }
}

impl<T> Stream for Feed<T> {
    type Item = ServiceResult<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        // Items buffered before a failure still go out; its reason comes once they are taken.
        if let Poll::Ready(Some(item)) = self.buffered.poll_recv(cx) {
            return Poll::Ready(Some(Ok(item)));
        }
        let Some(end) = self.end.as_mut() else {
            return self.buffered.poll_recv(cx).map(|item| item.map(Ok));
        };
        match Pin::new(end).poll(cx) {
            Poll::Ready(Ok(failure)) => {
                self.done = true;
                Poll::Ready(Some(Err(failure)))
            }
            // Stopped without failing: the buffer is the rest of the stream.
            Poll::Ready(Err(_)) => {
                self.end = None;
                self.buffered.poll_recv(cx).map(|item| item.map(Ok))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
