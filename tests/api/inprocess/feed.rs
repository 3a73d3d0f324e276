//! WatchRevocations as a fleet of verifiers uses it: heartbeats while there is nothing to send,
//! every subscriber served from one read of the store, a cap on streams, and a reader that stops
//! reading cut off (and resuming by `seq`) instead of holding the server's memory.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use latchkey::grpc::pb::{self, revocation_event::Target};
use tonic::{Code, Streaming, transport::Endpoint};

use crate::helpers::{
    app::{TestApp, master_key, spawn_app, spawn_app_with, use_store},
    client::{next_revocation, reason, watch_revocations},
    postgres::on_postgres,
};

const PASSWORD: &str = "correct horse";

/// Messages of a stream until `until`, each with when it came.
async fn collect(
    stream: &mut Streaming<pb::RevocationEvent>,
    until: Instant,
) -> Vec<(Instant, pb::RevocationEvent)> {
    let mut seen = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, stream.message()).await {
            Ok(Ok(Some(event))) => seen.push((Instant::now(), event)),
            Ok(other) => panic!("the stream ended: {other:?}"),
            Err(_) => break,
        }
    }
    seen
}

/// The events of a stream up to its first heartbeat: what it had to catch up with.
async fn caught_up(stream: &mut Streaming<pb::RevocationEvent>) -> Vec<pb::RevocationEvent> {
    let mut events = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
        let event = next.expect("a heartbeat within 5 s").unwrap().unwrap();
        if event.target.is_none() {
            return events;
        }
        events.push(event);
    }
}

/// Opens a session of alice and revokes it: one session event. Its id.
async fn revoke_a_session(app: &TestApp) -> String {
    let pair = app.login("alice", PASSWORD).await;
    app.revoke(&pair.refresh_token).await.unwrap();
    pair.session_id
}

fn session_id(event: &pb::RevocationEvent) -> String {
    match &event.target {
        Some(Target::SessionId(id)) => id.clone(),
        other => panic!("not a session event: {other:?}"),
    }
}

#[tokio::test]
async fn an_idle_stream_sends_heartbeats_that_carry_its_position() {
    let app = spawn_app().await;
    app.add_user("alice", PASSWORD, &[]).await;
    revoke_a_session(&app).await;
    let mut stream = watch_revocations(&app.client, 0).await.unwrap();
    let started = Instant::now();
    let mut seen = collect(&mut stream, started + Duration::from_millis(1200)).await;
    revoke_a_session(&app).await;
    let revoked = Instant::now();
    seen.extend(collect(&mut stream, revoked + Duration::from_millis(2500)).await);

    let (mut position, mut heartbeats_after) = (0, 0);
    for (at, event) in &seen {
        assert!(event.seq >= position, "went back: {seen:?}");
        if event.target.is_some() {
            assert!(event.seq > position && event.expires_at > 0);
        } else {
            assert_eq!((event.seq, event.expires_at), (position, 0), "{seen:?}");
            heartbeats_after += usize::from(*at > revoked);
        }
        position = event.seq;
    }
    let events: Vec<_> = seen.iter().filter(|(_, e)| e.target.is_some()).collect();
    assert_eq!(events.len(), 2, "{seen:?}");
    assert!(seen[1].1.target.is_none(), "a heartbeat once caught up");
    assert!(heartbeats_after >= 2, "idle 2.5 s: {seen:?}");
    let longest = seen.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    eprintln!("longest silence {longest:?}");
    assert!(longest < Duration::from_millis(1500), "{longest:?}");

    // Before anything was sent, a heartbeat carries the position asked for.
    let mut ahead = watch_revocations(&app.client, position + 100)
        .await
        .unwrap();
    let first = ahead.message().await.unwrap().unwrap();
    assert_eq!((first.seq, first.target), (position + 100, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_every_event_in_order_from_one_read_of_the_store() {
    let key = master_key();
    let app = spawn_app_with(|a| {
        a.master_key = Some(key.clone().into());
        // No periodic read: every read of the store below is one the feed asked for.
        a.revocation_sync_interval = Some("1h".into());
    })
    .await;
    let other = spawn_app_with(|a| use_store(a, &app.database_url, Some(&key))).await;
    app.add_user("alice", PASSWORD, &[]).await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut stream = watch_revocations(&app.client, 0).await.unwrap();
        assert!(caught_up(&mut stream).await.is_empty());
        streams.push(stream);
    }
    let reads = settled_reads(&app).await;

    let mut revoked = Vec::new();
    for _ in 0..5 {
        revoked.push(revoke_a_session(&app).await);
    }
    // Through another process: this one learns of it by one read of the store (on PostgreSQL,
    // prompted by NOTIFY).
    revoked.push(revoke_a_session(&other).await);
    if !on_postgres() {
        app.service.sync_revocations().await.unwrap();
    }
    let received = join_all(streams.iter_mut().map(|s| take_sessions(s, revoked.len()))).await;
    for ids in received {
        assert_eq!(ids, revoked);
    }
    let stats = app.service.feed_stats();
    assert_eq!((stats.store_reads - reads, stats.watchers), (1, 20));
}

/// The store reads so far, once start-up's have happened (none for 300 ms).
async fn settled_reads(app: &TestApp) -> u64 {
    let mut reads = app.service.feed_stats().store_reads;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = app.service.feed_stats().store_reads;
        if now == reads {
            return reads;
        }
        reads = now;
    }
    panic!("the store is read all the time");
}

/// The session ids of the next `count` events (within 5 s).
async fn take_sessions(stream: &mut Streaming<pb::RevocationEvent>, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(5), next_revocation(stream)).await;
        let event = next.expect("an event within 5 s").unwrap().unwrap();
        ids.push(session_id(&event));
    }
    ids
}

#[tokio::test]
async fn streams_beyond_max_watchers_are_refused_until_one_closes() {
    let app = spawn_app_with(|a| a.max_watchers = Some(2)).await;
    let mut first = watch_revocations(&app.client, 0).await.unwrap();
    let mut second = watch_revocations(&app.client, 0).await.unwrap();
    caught_up(&mut first).await;
    caught_up(&mut second).await;
    let refused = watch_revocations(&app.client, 0).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::ResourceExhausted, "OVERLOADED")
    );

    drop(first);
    let started = Instant::now();
    let mut third = loop {
        match watch_revocations(&app.client, 0).await {
            Ok(stream) => break stream,
            Err(status) => assert_eq!(reason(&status), "OVERLOADED"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no slot freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    caught_up(&mut third).await;
    eprintln!(
        "a slot was free {:?} after a stream closed",
        started.elapsed()
    );
    assert_eq!(app.service.feed_stats().watchers, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_cut_off_and_resumes_by_seq() {
    let app = spawn_app_with(|a| a.slow_watcher_timeout = Some("300ms".into())).await;
    app.add_user("alice", PASSWORD, &[]).await;
    // A client that grants the server 1 KiB of its window and never reads: the server soon has
    // nowhere to put the next event.
    let stalled = Endpoint::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .initial_stream_window_size(1024)
        .connect()
        .await
        .unwrap();
    let client = pb::auth_service_client::AuthServiceClient::new(stalled);
    let mut stream = watch_revocations(&client, 0).await.unwrap();

    let mut revoked = Vec::new();
    while app.service.feed_stats().watchers > 0 {
        assert!(revoked.len() < 3000, "still not cut off");
        for _ in 0..5 {
            // A few logins at once: more would be turned away by the password-hashing pool.
            let round = (0..4).map(|_| revoke_a_session(&app));
            revoked.extend(join_all(round).await);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    eprintln!("cut off after {} events", revoked.len());

    let mut received = Vec::new();
    let status = loop {
        match next_revocation(&mut stream).await {
            Some(Ok(event)) => received.push(event),
            Some(Err(status)) => break status,
            None => panic!("the stream ended without an error"),
        }
    };
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unavailable, "SUBSCRIBER_TOO_SLOW")
    );
    assert!(received.len() < revoked.len(), "{}", received.len());
    let last = received.last().map_or(0, |e| e.seq);
    let mut resumed = watch_revocations(&app.client, last).await.unwrap();
    let rest = take_sessions(&mut resumed, revoked.len() - received.len()).await;
    let all: Vec<_> = received.iter().map(session_id).chain(rest).collect();
    let (mut all, mut revoked) = (all, revoked);
    all.sort();
    revoked.sort();
    assert_eq!(all, revoked, "every event, once");
}

#[tokio::test]
async fn a_reader_behind_the_oldest_event_kept_gets_everything_kept() {
    let app = spawn_app().await;
    app.add_user("alice", PASSWORD, &[]).await;
    revoke_a_session(&app).await;
    revoke_a_session(&app).await;
    // Past every token the first two concern: they are forgotten at the next sync.
    app.clock.advance(16 * 60_000);
    let kept = revoke_a_session(&app).await;
    app.service.sync_revocations().await.unwrap();

    for after_seq in [0, 1] {
        let mut stream = watch_revocations(&app.client, after_seq).await.unwrap();
        let backlog = caught_up(&mut stream).await;
        assert_eq!(backlog.len(), 1, "after {after_seq}: {backlog:?}");
        assert_eq!((session_id(&backlog[0]), backlog[0].seq), (kept.clone(), 3));
    }
}
