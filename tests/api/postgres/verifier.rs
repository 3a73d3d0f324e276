//! The verifier on a PostgreSQL fleet: two in-process replicas on one database with one master
//! key, revocations made through replica A, the greeter following replica B. The 1 s promise
//! holds across replicas, and a verifier whose replica was down has missed nothing revoked through
//! the other meanwhile.

use std::time::{Duration, Instant};

use latchkey::service::Clock;

use crate::helpers::{
    app::{TestApp, master_key, spawn_app_with, use_store},
    greeter::{
        Answer, Greeter, invalid,
        outage::{goes_stale, recovers, restart_on_same_port},
        trials::measure,
    },
    postgres::fresh_postgres_database,
};

/// Replicas A and B on a fresh database, their manual clocks at one instant; the database URL
/// and the master key, to restart one.
async fn fleet() -> (TestApp, TestApp, String, String) {
    let (url, key) = (fresh_postgres_database().await, master_key());
    let a = spawn_app_with(|args| use_store(args, &url, Some(&key))).await;
    let b = spawn_app_with(|args| use_store(args, &url, Some(&key))).await;
    b.clock.advance(a.clock.now() - b.clock.now());
    (a, b, url, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_revocation_through_a_reaches_the_greeter_on_b_within_a_second() {
    let (a, b, _, _) = fleet().await;
    let greeter = Greeter::start(b.grpc_addr, &[]).await;
    measure(&a, &greeter, 20, "PostgreSQL fleet, A to B").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_of_a_stopped_replica_fails_closed_then_misses_nothing_revoked_through_another()
{
    let (a, b, url, key) = fleet().await;
    let alice = a.alice().await;
    a.add_user("bob", "battery staple", &[]).await;
    let bob = a.login("bob", "battery staple").await;
    let greeter = Greeter::start(b.grpc_addr, &["--max-staleness", "2s"]).await;
    for token in [&alice.access_token, &bob.access_token] {
        assert_eq!(greeter.answer(token).await, Answer::Accepted);
    }

    let addr = b.grpc_addr;
    let stopping = Instant::now();
    let data_dir = b.stop().await;
    let max_staleness = Duration::from_secs(2);
    let stale_after = goes_stale(
        &greeter,
        &alice.access_token,
        (stopping, Instant::now()),
        max_staleness,
    )
    .await;
    a.revoke(&bob.access_token).await.unwrap();

    let _b = restart_on_same_port(data_dir, addr, &url, Some(&key)).await;
    let recovered = recovers(&greeter, &alice.access_token).await;
    assert_eq!(
        greeter.answer(&bob.access_token).await,
        invalid(),
        "revoked through A while B was down"
    );
    eprintln!("stale {stale_after:?} after B stopped; recovered {recovered:?} after its restart");
}
