//! The doors an attacker leans on, each shown shut: a flood of logins answered `OVERLOADED` writes
//! nothing, one address's failures lock it out whatever the name, a user's sessions are capped and
//! LogoutAll stays cheap however many there are, and an oversized request is `RESOURCE_EXHAUSTED`.

use std::time::{Duration, Instant};

use latchkey::{domain::revocation::RevocationTarget, grpc::pb, service::Clock};
use tonic::Code;

use crate::helpers::{
    app::{overloaded_burst, spawn_app, spawn_app_with},
    client::{reason, with_bearer},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_turned_away_as_overloaded_has_written_nothing() {
    let (app, names, results) = overloaded_burst().await;
    let store = app.store().await;
    let mut overloaded = 0;
    for (name, result) in names.iter().zip(&results) {
        let counted = store.throttle(name).await.unwrap().is_some();
        match reason(result.as_ref().unwrap_err()).as_str() {
            "OVERLOADED" => {
                overloaded += 1;
                assert!(!counted, "{name} was turned away, yet counted");
            }
            "INVALID_CREDENTIALS" => assert!(counted, "{name} was checked, yet not counted"),
            other => panic!("{name}: {other}"),
        }
    }
    assert!(overloaded > 0, "a burst of 40 overflows a queue of 8");
}

#[tokio::test]
async fn an_address_with_too_many_failures_is_refused_whatever_the_name_for_the_minute() {
    let app = spawn_app_with(|a| a.login_failures_per_address = Some(5)).await;
    app.add_user("alice", "correct horse", &[]).await;
    for i in 0..5 {
        let status = app.try_login(&format!("guess{i}"), "wrong").await;
        assert_eq!(reason(&status.unwrap_err()), "INVALID_CREDENTIALS");
    }
    for wait in [0, 59_000] {
        app.clock.advance(wait);
        let status = app.try_login("alice", "correct horse").await.unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::ResourceExhausted, "TOO_MANY_ATTEMPTS"),
            "even the right password, on a name never tried"
        );
        let retry_after = if wait == 0 { "60" } else { "1" };
        assert_eq!(status.metadata().get("retry-after").unwrap(), retry_after);
    }
    app.clock.advance(1_000);
    app.login("alice", "correct horse").await;
}

#[tokio::test]
async fn a_login_beyond_the_cap_revokes_the_least_recently_used_session() {
    let app = spawn_app_with(|a| a.max_sessions_per_user = Some(3)).await;
    app.add_user("alice", "correct horse", &[]).await;
    let mut pairs = Vec::new();
    for _ in 0..3 {
        pairs.push(app.login("alice", "correct horse").await);
        app.clock.advance(1_000);
    }
    // The first session is used again: the second is now the least recently used.
    let first = app.refresh(&pairs[0].refresh_token).await.unwrap();
    app.clock.advance(1_000);
    let store = app.store().await;
    let seen = store.revocations_after(0, 100).await.unwrap().len();

    let fourth = app.login("alice", "correct horse").await;

    let status = app.refresh(&pairs[1].refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "REFRESH_TOKEN_INVALID");
    assert!(!app.introspect(&pairs[1].access_token).await.active);
    for alive in [&first, &pairs[2], &fourth] {
        assert!(app.introspect(&alive.refresh_token).await.active);
    }
    let events = store.revocations_after(0, 100).await.unwrap();
    let targets: Vec<_> = events[seen..].iter().map(|e| e.target.clone()).collect();
    assert_eq!(
        targets,
        [RevocationTarget::Session(pairs[1].session_id.clone())],
        "one session event on the feed"
    );
}

/// Gives a user `count` more live sessions in one statement, straight into the table: through the
/// store each would be a transaction of its own, and these need no refresh token.
async fn bulk_sessions(database_url: &str, user_id: &str, now: i64, count: i64) {
    const SQL: &str = "INSERT INTO sessions (id, user_id, client_id, device, ip, scope, \
         created_at, last_used_at, idle_expires_at, absolute_expires_at, revoked_at, generation, \
         rotated_at, sealed_token) \
         WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         SELECT 'bulk-' || i, $2, 'default', 'bulk', '127.0.0.1', '', $3, $3, $4, $4, NULL, 1, \
         NULL, $5 FROM n";
    // One text for both databases, bound once per driver.
    macro_rules! insert {
        ($pool:expr) => {
            sqlx::query(SQL)
                .bind(count)
                .bind(user_id)
                .bind(now)
                .bind(now + 3_600_000)
                .bind(vec![0_u8; 16])
                .execute(&$pool)
                .await
                .unwrap()
                .rows_affected()
        };
    }
    let done = if database_url.starts_with("sqlite") {
        insert!(sqlx::SqlitePool::connect(database_url).await.unwrap())
    } else {
        insert!(sqlx::PgPool::connect(database_url).await.unwrap())
    };
    assert_eq!(done, u64::try_from(count).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_all_of_five_thousand_sessions_is_quick_and_other_refreshes_keep_answering() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    app.add_user("bob", "bob's password", &[]).await;
    let bob = app.login("bob", "bob's password").await;
    let store = app.store().await;
    let user = store.user_by_name("alice").await.unwrap().unwrap();
    let now = app.clock.now();
    bulk_sessions(&app.database_url, &user.id, now, 4_999).await;

    let logout = tokio::spawn({
        let client = app.client.clone();
        let request = with_bearer(pb::LogoutAllRequest::default(), &alice.access_token);
        async move {
            let started = Instant::now();
            let response = client.clone().logout_all(request).await;
            (started.elapsed(), response)
        }
    });
    let mut token = bob.refresh_token;
    let mut slowest = Duration::ZERO;
    loop {
        let finished = logout.is_finished();
        let started = Instant::now();
        token = app.refresh(&token).await.unwrap().refresh_token;
        slowest = slowest.max(started.elapsed());
        if finished {
            break;
        }
    }
    let (took, response) = logout.await.unwrap();
    assert_eq!(response.unwrap().into_inner().revoked_sessions, 5_000);
    // Three statements per session under the feed's counter lock took 4 s on PostgreSQL, and on
    // SQLite held the write lock, and so every refresh, for over 800 ms; a bounded number of
    // statements takes a tenth of either.
    assert!(took < Duration::from_secs(2), "LogoutAll took {took:?}");
    assert!(
        slowest < Duration::from_millis(500),
        "a refresh of another user waited {slowest:?}"
    );
    assert!(store.live_sessions(&user.id, now).await.unwrap().is_empty());
    assert!(app.refresh(&alice.refresh_token).await.is_err());
    assert!(!app.introspect(&alice.access_token).await.active);
}

#[tokio::test]
async fn a_request_over_the_size_limit_is_resource_exhausted_and_the_server_serves_on() {
    let app = spawn_app().await;
    app.add_user("alice", "correct horse", &[]).await;
    let request = pb::LoginRequest {
        username: "alice".into(),
        password: "x".repeat(2 << 20),
        ..Default::default()
    };
    let status = app.client.clone().login(request).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::ResourceExhausted, "REQUEST_TOO_LARGE"),
        "{status:?}"
    );
    app.login("alice", "correct horse").await;
}

#[tokio::test]
async fn the_size_limit_holds_for_every_call_of_the_server() {
    let app = spawn_app().await;
    let request = pb::IntrospectRequest {
        token: "x".repeat(100 * 1024),
        token_type_hint: String::new(),
    };
    let status = app.client.clone().introspect(request).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::ResourceExhausted, "REQUEST_TOO_LARGE")
    );
}
