//! Store outages, on a throwaway PostgreSQL cluster of the test's own that is stopped and started:
//! calls fail fast with STORE_UNAVAILABLE (never a hang, never an unchecked `active=true`, never
//! reuse), health and readiness say so, and the server recovers by itself; a restart while the
//! store idles fails no call after it. A call that waits for a row past the statement timeout is
//! as unavailable, safe to retry.

use std::{
    fmt::Debug,
    future::Future,
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use latchkey::{
    domain::throttle,
    grpc::pb,
    store::{self, Store},
};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{
    app::{master_key, spawn_app_with, use_store},
    client::{http_get, reason, refresh_with, wait_health, with_bearer},
    crash::{PASSWORD, USER},
    postgres::{Cluster, fresh_postgres_database},
    process::Server,
};

/// Health must turn NOT_SERVING this soon after the store goes away.
const NOT_SERVING_WITHIN: Duration = Duration::from_secs(3);
/// And back to SERVING this soon after it returns.
const RECOVERED_WITHIN: Duration = Duration::from_secs(15);

/// The call fails within 5 s with UNAVAILABLE / STORE_UNAVAILABLE.
async fn unavailable<T: Debug>(what: &str, call: impl Future<Output = Result<T, Status>>) {
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), call).await;
    let answer = answer.unwrap_or_else(|_| panic!("{what} still pending after 5 s"));
    let status = match answer {
        Ok(ok) => panic!("{what} answered during the outage: {ok:?}"),
        Err(status) => status,
    };
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unavailable, "STORE_UNAVAILABLE"),
        "{what}: {status:?}"
    );
    eprintln!("{what} failed in {:?}", started.elapsed());
}

fn introspect_request(token: &str) -> pb::IntrospectRequest {
    pb::IntrospectRequest {
        token: token.into(),
        token_type_hint: String::new(),
    }
}

fn list_sessions(token: &str) -> tonic::Request<pb::ListSessionsRequest> {
    with_bearer(pb::ListSessionsRequest {}, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_outage_fails_calls_fast_turns_health_off_and_heals_by_itself() {
    let mut cluster = Cluster::init();
    cluster.start();
    let app = spawn_app_with(|a| use_store(a, &cluster.url(), None)).await;
    wait_health(app.grpc_addr, ServingStatus::Serving, RECOVERED_WITHIN)
        .await
        .unwrap();
    app.add_user(USER, PASSWORD, &[]).await;
    let (p1, p2) = (
        app.login(USER, PASSWORD).await,
        app.login(USER, PASSWORD).await,
    );

    cluster.stop();
    // Every call at once, each bounded on its own; meanwhile health must turn NOT_SERVING.
    let (at, mut c1, mut c2) = (&p1.access_token, app.client.clone(), app.client.clone());
    let (not_serving, ..) = tokio::join!(
        wait_health(app.grpc_addr, ServingStatus::NotServing, NOT_SERVING_WITHIN),
        unavailable("Login", app.try_login(USER, PASSWORD)),
        unavailable("Refresh", app.refresh(&p2.refresh_token)),
        unavailable("Introspect", c1.introspect(introspect_request(at))),
        unavailable("Revoke", app.revoke(at)),
        unavailable("ListSessions", c2.list_sessions(list_sessions(at))),
    );
    eprintln!("NOT_SERVING {:?} after the stop", not_serving.unwrap());
    assert_eq!(http_get(app.http_addr, "/readyz").await.0, 503);
    // The process is up and says so; the stale revocation state vouches for nothing.
    assert_eq!(http_get(app.http_addr, "/healthz").await.0, 200);
    tokio::join!(
        unavailable("Introspect (stale)", c1.introspect(introspect_request(at))),
        unavailable("Refresh (again)", app.refresh(&p2.refresh_token)),
    );

    cluster.start();
    let recovered = wait_health(app.grpc_addr, ServingStatus::Serving, RECOVERED_WITHIN)
        .await
        .unwrap();
    eprintln!("SERVING again {recovered:?} after the store came back");
    assert_eq!(http_get(app.http_addr, "/readyz").await.0, 200);
    // Long past the grace window: the refresh that failed never spent the token, so it rotates.
    app.clock.advance(11_000);
    let next = app
        .refresh(&p2.refresh_token)
        .await
        .expect("the failed refresh, retried");
    assert_ne!(next.refresh_token, p2.refresh_token);
    assert!(app.introspect(&next.refresh_token).await.active);
    assert!(!app.introspect(&p2.refresh_token).await.active);
    assert!(
        app.introspect(&p1.access_token).await.active,
        "the failed Revoke changed nothing"
    );
    let sessions = c1.list_sessions(list_sessions(at)).await.unwrap();
    assert_eq!(sessions.into_inner().sessions.len(), 2);
    app.revoke(&p1.access_token).await.unwrap();
    assert!(!app.introspect(&p1.access_token).await.active);
    app.login(USER, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_started_while_the_store_is_down_keeps_running_until_it_comes_up() {
    let mut cluster = Cluster::init();
    let (url, key) = (cluster.url(), master_key());
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("LATCHKEY_DATABASE_URL", url.as_str()),
        ("LATCHKEY_MASTER_KEY", key.as_str()),
    ];
    let mut server = Server::start(dir.path(), &vars).await;
    server
        .wait_health(ServingStatus::NotServing, NOT_SERVING_WITHIN)
        .await;
    assert_eq!(http_get(server.http_addr, "/readyz").await.0, 503);
    let mut client = server.client();
    let login = pb::LoginRequest {
        username: USER.into(),
        password: PASSWORD.into(),
        ..Default::default()
    };
    unavailable("Login", client.clone().login(login.clone())).await;
    let token = format!("lk_rt_{}", "A".repeat(43));
    unavailable("Refresh", refresh_with(&client, &token)).await;
    unavailable("Introspect", client.introspect(introspect_request(&token))).await;
    assert!(server.running(), "still up:\n{}", server.log());

    cluster.start();
    let took = server
        .wait_health(ServingStatus::Serving, RECOVERED_WITHIN)
        .await;
    eprintln!("SERVING {took:?} after the store came up");
    assert_eq!(http_get(server.http_addr, "/readyz").await.0, 200);
    server.add_user(USER, PASSWORD).await;
    let pair = client.clone().login(login).await.unwrap().into_inner();
    let next = refresh_with(&client, &pair.refresh_token).await.unwrap();
    let info = client
        .clone()
        .introspect(introspect_request(&next.access_token))
        .await;
    assert!(info.unwrap().into_inner().active);
    assert!(server.running());
}

/// `n` store reads at once (each on a pooled connection of its own, so that the pool holds
/// several), every one of which must answer.
async fn reads_at_once(store: &dyn Store, n: usize) {
    let reads = (0..n).map(|_| store.user_by_name(USER));
    for (i, read) in join_all(reads).await.into_iter().enumerate() {
        let user = read.unwrap_or_else(|e| panic!("read #{i}: {e}"));
        assert!(user.is_none(), "no user was made");
    }
}

/// The store alone, with no server tasks polling it: they would take dead connections out of the
/// pool by themselves, and hide whether the pool checks a connection that sat idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_of_postgres_while_the_store_idles_fails_no_call_after_it() {
    let mut cluster = Cluster::init();
    cluster.start();
    let store = store::connect(&cluster.url(), store::Mode::Create)
        .await
        .unwrap();
    // Several pooled connections, each of which the restart leaves dead.
    reads_at_once(store.as_ref(), 8).await;

    cluster.stop();
    cluster.start();
    // Idle for longer than the pool lets a connection go unchecked (1 s); sqlx measures idleness
    // with the real clock.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    reads_at_once(store.as_ref(), 8).await;
    let counted = throttle::Record {
        failures: 1,
        ..Default::default()
    };
    let written = store.swap_throttle(USER, None, &counted).await;
    assert!(written.expect("a write after the restart"));
}

/// A call that waits for a row past PostgreSQL's statement timeout (5 s) fails UNAVAILABLE /
/// STORE_UNAVAILABLE, safe to retry, not INTERNAL: here a login, while another transaction holds
/// its user's row. Once the row is free, the same login opens its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_waiting_for_a_row_past_the_statement_timeout_is_store_unavailable() {
    use sqlx::Connection;
    let (url, key) = (fresh_postgres_database().await, master_key());
    let app = spawn_app_with(|a| use_store(a, &url, Some(&key))).await;
    app.add_user(USER, PASSWORD, &[]).await;
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE username = $1 FOR UPDATE")
        .bind(USER)
        .execute(&mut *held)
        .await
        .unwrap();
    let started = Instant::now();
    let status = app.try_login(USER, PASSWORD).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unavailable, "STORE_UNAVAILABLE"),
        "{status:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "it did not wait"
    );
    held.rollback().await.unwrap();
    app.login(USER, PASSWORD).await;
}
