//! A greeter through a latchkey outage: still accepting until its staleness bound, then failing
//! closed, then recovering once latchkey is back (on the same port).

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use super::{Answer, Greeter, stale};
use crate::helpers::app::{TestApp, spawn_app_in, use_store};

/// Checks that the greeter keeps accepting `token` after latchkey began to stop at `stopping`
/// (and was gone at `stopped`) until `max_staleness` since it last heard the feed (a heartbeat,
/// at most a second before `stopping`), then refuses it as stale. When that came, after `stopped`.
pub async fn goes_stale(
    greeter: &Greeter,
    token: &str,
    (stopping, stopped): (Instant, Instant),
    max_staleness: Duration,
) -> Duration {
    let within = max_staleness + Duration::from_secs(3);
    let (_, answer) = greeter.next_answer(token, &Answer::Accepted, within).await;
    let (since_stopping, since_stopped) = (stopping.elapsed(), stopped.elapsed());
    assert_eq!(
        answer,
        stale(),
        "after {since_stopped:?}:\n{}",
        greeter.log()
    );
    let heartbeat = Duration::from_secs(1);
    assert!(
        since_stopping + heartbeat >= max_staleness,
        "stale too early: {since_stopping:?} after latchkey began to stop"
    );
    assert!(
        since_stopped <= max_staleness + Duration::from_secs(1),
        "stale too late: {since_stopped:?} after latchkey stopped"
    );
    since_stopped
}

/// Waits (at most 10 s: the verifier's reconnection backoff is capped at 5 s) until the greeter
/// accepts `token` again after a stale spell; how long that took.
pub async fn recovers(greeter: &Greeter, token: &str) -> Duration {
    let within = Duration::from_secs(10);
    let (took, answer) = greeter.next_answer(token, &stale(), within).await;
    assert_eq!(
        answer,
        Answer::Accepted,
        "after {took:?}:\n{}",
        greeter.log()
    );
    took
}

/// Starts a stopped server again on its data directory, database and gRPC address (a greeter
/// follows one address), with `master_key` when the replicas of a fleet share one.
pub async fn restart_on_same_port(
    data_dir: tempfile::TempDir,
    grpc_addr: SocketAddr,
    database_url: &str,
    master_key: Option<&str>,
) -> TestApp {
    spawn_app_in(data_dir, |args| {
        use_store(args, database_url, master_key);
        args.grpc_addr = Some(grpc_addr.to_string());
    })
    .await
}
