//! A fleet: three in-process replicas on one PostgreSQL database, sharing one master key. Rotation is
//! atomic across them, a revocation made through one shows on the others at once and on every
//! revocation feed, and a key rotation reaches every replica.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use latchkey::{
    grpc::pb::{self, revocation_event::Target},
    service::Clock,
};
use tonic::Status;

use crate::helpers::{
    app::{TestApp, master_key, spawn_app_with, use_store},
    client::{key_id, next_revocation, reason, with_bearer},
    postgres::fresh_postgres_database,
};

const PASSWORD: &str = "correct horse";

/// Three replicas on one fresh PostgreSQL database with one master key. Their manual clocks are
/// set to the same instant, as the clocks of real replicas would (nearly) be.
async fn fleet() -> [TestApp; 3] {
    let url = fresh_postgres_database().await;
    let key = master_key();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(spawn_app_with(|a| use_store(a, &url, Some(&key))).await);
    }
    let newest = replicas.iter().map(|r| r.clock.now()).max().unwrap();
    for replica in &replicas {
        replica.clock.advance(newest - replica.clock.now());
    }
    replicas.try_into().ok().unwrap()
}

async fn logout_all(app: &TestApp, access_token: &str) -> Result<u32, Status> {
    let request = with_bearer(pb::LogoutAllRequest::default(), access_token);
    let response = app.client.clone().logout_all(request).await?;
    Ok(response.into_inner().revoked_sessions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_across_replicas_share_one_successor() {
    let fleet = fleet().await;
    fleet[0].add_user("alice", PASSWORD, &["read"]).await;
    let first = fleet[1].login("alice", PASSWORD).await;
    let calls = (0..36).map(|i| fleet[i % 3].refresh(&first.refresh_token));
    let results: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("refresh {i} on replica {}: {e:?}", i % 3)))
        .collect();
    let successor = &results[0].refresh_token;
    assert_ne!(successor, &first.refresh_token);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(&result.refresh_token, successor, "refresh {i}");
        assert_eq!(result.session_id, first.session_id);
    }
    // Exactly one live token: the successor rotates once, then it and the original are spent.
    let next = fleet[2].refresh(successor).await.unwrap();
    for (i, replica) in fleet.iter().enumerate() {
        let live = [&next.refresh_token, &next.access_token];
        for token in [&first.refresh_token, successor].into_iter().chain(live) {
            let active = replica.introspect(token).await.active;
            assert_eq!(active, live.contains(&token), "replica {i}");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Revocation {
    RefreshToken,
    AccessToken,
    LogoutAll,
}

/// One round: a login, then a Refresh and a revocation of its session started together on two
/// other replicas. Returns every token pair any call handed out.
async fn race(fleet: &[TestApp; 3], round: usize, how: Revocation) -> Vec<pb::TokenResponse> {
    let user = format!("user{round}");
    let login = fleet[round % 3].login(&user, PASSWORD).await;
    let (refresher, revoker) = (&fleet[(round + 1) % 3], &fleet[(round + 2) % 3]);
    let revocation = async {
        match how {
            Revocation::RefreshToken => revoker.revoke(&login.refresh_token).await,
            Revocation::AccessToken => revoker.revoke(&login.access_token).await,
            Revocation::LogoutAll => {
                let revoked = logout_all(revoker, &login.access_token).await?;
                assert_eq!(revoked, 1, "round {round}: the one session of {user}");
                Ok(())
            }
        }
    };
    let (refreshed, revoked) = tokio::join!(refresher.refresh(&login.refresh_token), revocation);
    revoked.unwrap_or_else(|e| panic!("round {round} {how:?}: {e:?}"));
    let mut issued = vec![login];
    match refreshed {
        Ok(pair) => issued.push(pair),
        Err(status) => assert_eq!(reason(&status), "REFRESH_TOKEN_INVALID", "round {round}"),
    }
    issued
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_racing_revoke_or_logout_all_on_other_replicas_never_outlives_the_revocation() {
    let fleet = fleet().await;
    let rounds = 60; // 20 of each kind of revocation
    for round in 0..rounds {
        fleet[0]
            .add_user(&format!("user{round}"), PASSWORD, &[])
            .await;
    }
    let mut issued = Vec::new();
    let mut refreshed = 0;
    for round in 0..rounds {
        let how = [
            Revocation::RefreshToken,
            Revocation::AccessToken,
            Revocation::LogoutAll,
        ][round % 3];
        let pairs = race(&fleet, round, how).await;
        refreshed += pairs.len() - 1;
        issued.extend(pairs);
    }
    eprintln!("the refresh came first in {refreshed} of {rounds} races");
    for (i, replica) in fleet.iter().enumerate() {
        // Independent of how fast the feed reaches a replica (that is the next test): caught up.
        replica.service.sync_revocations().await.unwrap();
        for pair in &issued {
            for token in [&pair.access_token, &pair.refresh_token] {
                let info = replica.introspect(token).await;
                assert!(!info.active, "replica {i}, session {}", pair.session_id);
            }
        }
    }
    for (i, pair) in issued.iter().enumerate() {
        let status = fleet[i % 3].refresh(&pair.refresh_token).await.unwrap_err();
        assert_eq!(
            reason(&status),
            "REFRESH_TOKEN_INVALID",
            "{}",
            pair.session_id
        );
    }
}

/// API.md: a revocation made through any replica shows in Introspect on every replica within
/// 100 ms. Asked from the moment the revocation returned, a replica may still say active only to a
/// call that began before those 100 ms were up. (Refresh tokens are looked up in the store: at once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_through_one_replica_shows_in_introspect_on_the_others_within_100_ms() {
    let fleet = fleet().await;
    fleet[0].add_user("alice", PASSWORD, &[]).await;
    let mut slowest = Duration::ZERO;
    for how in [
        Revocation::AccessToken,
        Revocation::RefreshToken,
        Revocation::LogoutAll,
    ] {
        for by in 0..3 {
            let pair = fleet[by].login("alice", PASSWORD).await;
            let others = [&fleet[(by + 1) % 3], &fleet[(by + 2) % 3]];
            for other in others {
                assert!(other.introspect(&pair.access_token).await.active);
            }
            match how {
                Revocation::AccessToken => fleet[by].revoke(&pair.access_token).await.unwrap(),
                Revocation::RefreshToken => fleet[by].revoke(&pair.refresh_token).await.unwrap(),
                Revocation::LogoutAll => {
                    logout_all(&fleet[by], &pair.access_token).await.unwrap();
                }
            }
            let returned = Instant::now();
            for other in others {
                assert!(!other.introspect(&pair.refresh_token).await.active);
                let seen_after = loop {
                    let asked = returned.elapsed();
                    if !other.introspect(&pair.access_token).await.active {
                        break asked;
                    }
                    assert!(
                        asked < Duration::from_millis(100),
                        "{how:?} through replica {by}: still active elsewhere when asked {asked:?} after"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                slowest = slowest.max(seen_after);
            }
        }
    }
    eprintln!("revocations showed on the other replicas within {slowest:?}");
}

type Events = tonic::Streaming<pb::RevocationEvent>;

async fn watch(app: &TestApp, after_seq: u64) -> Events {
    let request = pb::WatchRevocationsRequest { after_seq };
    let stream = app.client.clone().watch_revocations(request).await;
    stream.unwrap().into_inner()
}

/// The next `count` events of a stream; their seqs must increase.
async fn take(stream: &mut Events, count: usize) -> Vec<pb::RevocationEvent> {
    let mut events: Vec<pb::RevocationEvent> = Vec::new();
    while events.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(5), next_revocation(stream)).await;
        let next = next.unwrap_or_else(|_| panic!("only {} events came in 5 s", events.len()));
        let event = next.expect("the stream stays open").expect("an event");
        assert!(
            events.last().is_none_or(|e| e.seq < event.seq),
            "{events:?} {event:?}"
        );
        events.push(event);
    }
    events
}

fn session_ids(events: &[pb::RevocationEvent]) -> Vec<String> {
    let id = |e: &pb::RevocationEvent| match &e.target {
        Some(Target::SessionId(id)) => id.clone(),
        other => panic!("not a session event: {other:?}"),
    };
    events.iter().map(id).collect()
}

/// Opens and revokes `count` sessions one after another, alternately through A and B.
async fn revoke_sessions(fleet: &[TestApp; 3], count: usize) -> Vec<String> {
    let mut revoked = Vec::new();
    for i in 0..count {
        let pair = fleet[i % 2].login("alice", PASSWORD).await;
        fleet[i % 2].revoke(&pair.refresh_token).await.unwrap();
        revoked.push(pair.session_id);
    }
    revoked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_streams_the_revocations_of_all_in_one_resumable_order() {
    let fleet = fleet().await;
    fleet[0].add_user("alice", PASSWORD, &[]).await;
    let revoked = revoke_sessions(&fleet, 8).await;
    let events = take(&mut watch(&fleet[2], 0).await, 8).await;
    assert_eq!(session_ids(&events), revoked, "in the order they were made");
    // Resuming after the fourth, on another replica, gives exactly the rest.
    for replica in &fleet[..2] {
        let rest = take(&mut watch(replica, events[3].seq).await, 4).await;
        assert_eq!(rest, events[4..]);
    }
    // A stream already open on C receives what A and B revoke from then on.
    let mut live = watch(&fleet[2], events[7].seq).await;
    let more = revoke_sessions(&fleet, 4).await;
    let streamed = take(&mut live, 4).await;
    assert!(streamed[0].seq > events[7].seq);
    assert_eq!(session_ids(&streamed), more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_rotation_on_one_replica_reaches_every_replica_within_five_seconds() {
    let fleet = fleet().await;
    fleet[0].add_user("alice", PASSWORD, &[]).await;
    let old: Vec<_> = join_all(fleet.iter().map(|r| r.login("alice", PASSWORD))).await;
    let old_kid = key_id(&old[0].access_token);
    assert!(
        old.iter().all(|p| key_id(&p.access_token) == old_kid),
        "one key for the fleet"
    );

    let rotated = Instant::now();
    let new_kid = fleet[0].service.rotate_keys().await.unwrap();
    assert_ne!(new_kid, old_kid);
    let mut fresh = Vec::new();
    for (i, replica) in fleet.iter().enumerate() {
        loop {
            let pair = replica.login("alice", PASSWORD).await;
            if key_id(&pair.access_token) == new_kid {
                fresh.push(pair);
                break;
            }
            let waited = rotated.elapsed();
            assert!(
                waited < Duration::from_secs(5),
                "replica {i} still signs with the old key"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!(
        "every replica signs with the new key {:?} after rotation",
        rotated.elapsed()
    );
    for (i, replica) in fleet.iter().enumerate() {
        for pair in old.iter().chain(&fresh) {
            assert!(
                replica.introspect(&pair.access_token).await.active,
                "replica {i}"
            );
        }
        let jwks = replica.jwks().await;
        assert!(
            jwks.contains(&old_kid) && jwks.contains(&new_kid),
            "replica {i}: {jwks}"
        );
    }
}
