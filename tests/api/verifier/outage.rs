//! latchkey out of reach: the greeter keeps accepting still-valid tokens until its
//! `--max-staleness`, then fails closed (`REVOCATIONS_STALE`); latchkey restarted on the same
//! data directory, it recovers by itself and honours what was revoked while it was away (here by
//! the CLI, another process on the same database).

use std::time::{Duration, Instant};

use crate::helpers::{
    app::spawn_app,
    greeter::{
        Answer, Greeter, invalid,
        outage::{goes_stale, recovers, restart_on_same_port},
        stale,
    },
    process::{latchkey_in, run_latchkey},
};

const MAX_STALENESS: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_latchkey_fails_closed_after_max_staleness_and_a_restarted_one_misses_nothing() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    app.add_user("bob", "battery staple", &[]).await;
    let bob = app.login("bob", "battery staple").await;
    let greeter = Greeter::start(app.grpc_addr, &["--max-staleness", "2s"]).await;
    for token in [&alice.access_token, &bob.access_token] {
        assert_eq!(greeter.answer(token).await, Answer::Accepted);
    }

    let (addr, url) = (app.grpc_addr, app.database_url.clone());
    let stopping = Instant::now();
    let data_dir = app.stop().await;
    let stale_after = goes_stale(
        &greeter,
        &alice.access_token,
        (stopping, Instant::now()),
        MAX_STALENESS,
    )
    .await;

    // Meanwhile an operator disables bob, with the CLI on the same database.
    let mut disable = latchkey_in(data_dir.path());
    disable
        .env("LATCHKEY_DATABASE_URL", &url)
        .args(["user", "disable", "bob"]);
    run_latchkey(disable, "").await;
    assert_eq!(greeter.answer(&bob.access_token).await, stale());

    let _app = restart_on_same_port(data_dir, addr, &url, None).await;
    let recovered = recovers(&greeter, &alice.access_token).await;
    assert_eq!(
        greeter.answer(&bob.access_token).await,
        invalid(),
        "the disable made while latchkey was down"
    );
    eprintln!("stale {stale_after:?} after the stop; recovered {recovered:?} after the restart");
}
