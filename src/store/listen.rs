//! Change signals on PostgreSQL. Every transaction that writes revocations also runs
//! `NOTIFY_REVOCATIONS`, which PostgreSQL delivers at commit (and never for a rolled-back
//! transaction); each replica keeps one pooled connection `LISTEN`ing, so a revocation made through
//! any replica reaches the others in milliseconds instead of at their next poll.
//!
//! A notification names the process that wrote (its `origin`) and the last number written; a
//! process is not told of its own, which it has applied already.
//!
//! A listener whose connection fails is dropped and opened again (every [`RETRY`] while that
//! fails: a database outage), and each (re)connection is announced as [`Signal::Resync`]: what was
//! committed while nobody listened was announced to no one.

use std::{convert::Infallible, time::Duration};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::mpsc;

use super::{Signal, Signals, StoreResult};

/// The channel `NOTIFY_REVOCATIONS` announces on.
pub(super) const CHANNEL: &str = "latchkey_revocations";
/// How long to wait before opening the listener again after it failed.
const RETRY: Duration = Duration::from_secs(1);
/// Signals not yet taken by the reader. Beyond it they are dropped, which loses nothing: those
/// waiting already make the reader look at the store after the dropped ones were committed.
const QUEUE: usize = 64;

/// What `NOTIFY_REVOCATIONS` sends: who wrote, and the last number written.
pub(super) fn payload(origin: &str, seq: i64) -> String {
    format!("{}{seq}", payload_prefix(origin))
}

/// What comes before the number in a payload of `origin`'s (a statement that knows the number only
/// as it runs appends it; see `postgres_open_session.rs`).
pub(super) fn payload_prefix(origin: &str) -> String {
    format!("{origin}:")
}

/// What a notification says to the process `origin`: nothing when that process wrote it.
fn signal(payload: &str, origin: &str) -> Option<Signal> {
    match payload.split_once(':') {
        Some((writer, _)) if writer == origin => None,
        Some((_, seq)) => Some(seq.parse().map_or(Signal::Resync, Signal::Committed)),
        None => Some(Signal::Resync),
    }
}

/// Starts a listener on its own task; it stops once the returned receiver is dropped.
pub(super) fn listen(pool: PgPool, origin: String) -> Signals {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        loop {
            let Err(failed) = tokio::select! {
                followed = follow(&pool, &origin, &tx) => followed,
                () = tx.closed() => return,
            };
            let _ = tx.try_send(Err(failed));
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                () = tx.closed() => return,
            }
        }
    });
    rx
}

/// Listens on one connection and passes on what it hears; returns only when that connection fails.
async fn follow(
    pool: &PgPool,
    origin: &str,
    tx: &mpsc::Sender<StoreResult<Signal>>,
) -> StoreResult<Infallible> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    let _ = tx.try_send(Ok(Signal::Resync));
    loop {
        // `None`: the connection was lost and opened again (sqlx does it), missing what was sent
        // in between.
        let signal = match listener.try_recv().await? {
            Some(notification) => signal(notification.payload(), origin),
            None => Some(Signal::Resync),
        };
        if let Some(signal) = signal {
            let _ = tx.try_send(Ok(signal));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_hears_of_the_revocations_of_others_only() {
        let ours = payload("a1", 42);
        assert_eq!(signal(&ours, "a1"), None);
        assert_eq!(signal(&ours, "b2"), Some(Signal::Committed(42)));
        assert_eq!(signal("garbled", "b2"), Some(Signal::Resync));
        assert_eq!(signal("a1:x", "b2"), Some(Signal::Resync));
    }
}
