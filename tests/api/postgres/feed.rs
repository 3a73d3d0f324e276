//! The revocation feed across a PostgreSQL fleet: a revocation committed through one replica
//! reaches the WatchRevocations streams of another by NOTIFY, in milliseconds, with the periodic
//! poll set far too long to be what brought it; and after a database outage the listener is back
//! by itself, while streams went silent (no heartbeats) for as long as their replica was stale.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use latchkey::grpc::pb::{self, revocation_event::Target};
use tonic::Streaming;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{
    app::{TestApp, master_key, spawn_app_with, use_store},
    client::{next_revocation, wait_health, watch_revocations},
    postgres::{Cluster, fresh_postgres_database},
};

const PASSWORD: &str = "correct horse";
/// Far longer than any test here: a revocation that arrives sooner came by NOTIFY.
const SLOW_POLL: &str = "30s";

/// A replica on `url`; `poll` is its revocation sync interval (`None`: the default).
async fn replica(url: &str, key: &str, poll: Option<&str>) -> TestApp {
    spawn_app_with(|a| {
        use_store(a, url, Some(key));
        a.revocation_sync_interval = poll.map(str::to_owned);
    })
    .await
}

/// Revokes a new session of alice through `by`; how long after the call returned `stream` had its
/// event.
async fn delivery(by: &TestApp, stream: &mut Streaming<pb::RevocationEvent>) -> Duration {
    let pair = by.login("alice", PASSWORD).await;
    by.revoke(&pair.refresh_token).await.unwrap();
    let returned = Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(5), next_revocation(stream)).await;
    let event = next.expect("the event within 5 s").unwrap().unwrap();
    assert_eq!(event.target, Some(Target::SessionId(pair.session_id)));
    returned.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_through_one_replica_reaches_the_streams_of_another_in_milliseconds() {
    let (url, key) = (fresh_postgres_database().await, master_key());
    let a = replica(&url, &key, Some(SLOW_POLL)).await;
    let b = replica(&url, &key, Some(SLOW_POLL)).await;
    a.add_user("alice", PASSWORD, &[]).await;
    let mut stream = watch_revocations(&b.client, 0).await.unwrap();
    let mut delays = Vec::new();
    for _ in 0..10 {
        delays.push(delivery(&a, &mut stream).await);
    }
    eprintln!("A's revocations on B's stream after {delays:?}");
    assert!(delays.iter().all(|d| *d < Duration::from_millis(500)));

    // What B's stream has announced, B's Introspect honours: B applies a revocation to its cache
    // before offering it to its streams. (How soon an unannounced revocation shows in Introspect,
    // within 100 ms, is the fleet's test; right after A's answer B may still answer from memory.)
    let pair = a.login("alice", PASSWORD).await;
    a.revoke(&pair.access_token).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), next_revocation(&mut stream)).await;
    next.expect("the event within 5 s").unwrap().unwrap();
    assert!(!b.introspect(&pair.access_token).await.active);
}

/// A login beyond the session cap revokes a session in the same call as it opens its own: that
/// revocation is announced like any other, so it reaches another replica's stream by NOTIFY too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_the_cap_revokes_through_one_replica_reaches_the_streams_of_another_at_once() {
    let (url, key) = (fresh_postgres_database().await, master_key());
    let a = spawn_app_with(|args| {
        use_store(args, &url, Some(&key));
        args.revocation_sync_interval = Some(SLOW_POLL.to_owned());
        args.max_sessions_per_user = Some(1);
    })
    .await;
    let b = replica(&url, &key, Some(SLOW_POLL)).await;
    a.add_user("alice", PASSWORD, &[]).await;
    let mut stream = watch_revocations(&b.client, 0).await.unwrap();
    let mut previous = a.login("alice", PASSWORD).await;
    for _ in 0..3 {
        let next = a.login("alice", PASSWORD).await;
        let returned = Instant::now();
        let event =
            tokio::time::timeout(Duration::from_secs(5), next_revocation(&mut stream)).await;
        let event = event.expect("the eviction within 5 s").unwrap().unwrap();
        assert_eq!(event.target, Some(Target::SessionId(previous.session_id)));
        eprintln!(
            "an eviction through A on B's stream after {:?}",
            returned.elapsed()
        );
        assert!(returned.elapsed() < Duration::from_millis(500));
        assert!(!b.introspect(&previous.access_token).await.active);
        assert!(b.introspect(&next.access_token).await.active);
        previous = next;
    }
}

/// Every message of a stream as it comes, with when, and whether it was a heartbeat.
type Record = Arc<Mutex<Vec<(Instant, bool)>>>;

fn record(mut stream: Streaming<pb::RevocationEvent>) -> Record {
    let record = Record::default();
    let seen = record.clone();
    tokio::spawn(async move {
        while let Ok(Some(event)) = stream.message().await {
            let heartbeat = event.target.is_none();
            seen.lock().unwrap().push((Instant::now(), heartbeat));
        }
    });
    record
}

fn heartbeats_between(record: &Record, from: Instant, to: Instant) -> usize {
    let seen = record.lock().unwrap();
    seen.iter()
        .filter(|(at, heartbeat)| *heartbeat && *at > from && *at < to)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_store_outage_streams_fall_silent_then_notify_works_again() {
    let mut cluster = Cluster::init();
    cluster.start();
    let (url, key) = (cluster.url(), master_key());
    let a = replica(&url, &key, None).await;
    let b = replica(&url, &key, Some(SLOW_POLL)).await;
    a.add_user("alice", PASSWORD, &[]).await;
    let heard_on_a = record(watch_revocations(&a.client, 0).await.unwrap());
    let mut on_b = watch_revocations(&b.client, 0).await.unwrap();
    delivery(&a, &mut on_b).await;

    let stopping = Instant::now();
    cluster.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarting = Instant::now();
    let reads = b.service.feed_stats().store_reads;
    cluster.start();
    // A stale replica vouches for nothing: no heartbeat once its last sync is 2 s old.
    let silent_from = stopping + Duration::from_secs(3);
    assert!(heartbeats_between(&heard_on_a, stopping - Duration::from_secs(2), stopping) > 0);
    assert_eq!(heartbeats_between(&heard_on_a, silent_from, restarting), 0);

    for replica in [&a, &b] {
        let back = wait_health(
            replica.grpc_addr,
            ServingStatus::Serving,
            Duration::from_secs(15),
        );
        back.await.unwrap();
    }
    // B's listener is back when it has read the store again (its poll is 30 s away).
    let waited = Instant::now();
    while b.service.feed_stats().store_reads == reads {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "B never read again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let since = Instant::now();
    while heartbeats_between(&heard_on_a, since, Instant::now()) == 0 {
        assert!(since.elapsed() < Duration::from_secs(5), "A stays silent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        let delay = delivery(&a, &mut on_b).await;
        eprintln!("after the outage, A's revocation on B's stream after {delay:?}");
        assert!(delay < Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn account_events_through_one_replica_reach_the_watch_events_of_another_in_order() {
    use latchkey::grpc::pb::admin_service_client::AdminServiceClient;

    use crate::{helpers::client::with_bearer, inprocess::admin_token};
    let (url, key) = (fresh_postgres_database().await, master_key());
    let a = replica(&url, &key, None).await;
    let b = replica(&url, &key, None).await;
    let token = admin_token(&a).await;
    let mut watcher = AdminServiceClient::new(crate::helpers::client::lazy_channel(b.grpc_addr));
    let request = with_bearer(pb::WatchEventsRequest { after_seq: 0 }, &token);
    let mut stream = watcher.watch_events(request).await.unwrap().into_inner();
    for name in ["alice", "bob", "carol"] {
        a.add_user(name, PASSWORD, &[]).await;
        a.login(name, PASSWORD).await;
    }
    let (mut seen, started) = (Vec::new(), Instant::now());
    while seen.len() < 8 {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
        let event = next.expect("B's stream goes on").unwrap().unwrap();
        if !event.kind.is_empty() {
            seen.push((event.seq, event.kind));
        }
    }
    eprintln!(
        "A's 8 account events on B's stream after {:?}",
        started.elapsed()
    );
    let kinds: Vec<&str> = seen.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds[2..],
        [
            "user_created",
            "login",
            "user_created",
            "login",
            "user_created",
            "login"
        ]
    );
    assert!(
        seen.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "in order, none missed: {seen:?}"
    );
}
