//! Refresh, end to end: rotation, reuse detection, the grace window for retries, concurrency, and
//! the lifetimes that end a session.

use futures_util::future::join_all;
use tonic::Code;

use crate::helpers::{
    app::{spawn_app, spawn_app_with},
    client::reason,
};

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

#[tokio::test]
async fn refresh_rotates_the_token_and_the_spent_one_goes_inactive() {
    let app = spawn_app().await;
    let first = app.alice().await;
    let second = app.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.session_id, first.session_id);
    assert!(!app.introspect(&first.refresh_token).await.active);
    assert!(app.introspect(&second.refresh_token).await.active);
    assert!(app.introspect(&second.access_token).await.active);
    // Introspecting a spent token is not reuse: the session lives on.
    assert!(app.refresh(&second.refresh_token).await.is_ok());
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_session_and_its_access_tokens() {
    let app = spawn_app().await;
    let first = app.alice().await;
    let second = app.refresh(&first.refresh_token).await.unwrap();
    let third = app.refresh(&second.refresh_token).await.unwrap();
    let status = app.refresh(&first.refresh_token).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unauthenticated, "REFRESH_TOKEN_REUSED")
    );
    let status = app.refresh(&third.refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "REFRESH_TOKEN_INVALID");
    for token in [
        &first.access_token,
        &second.access_token,
        &third.access_token,
    ] {
        assert!(!app.introspect(token).await.active);
    }
}

#[tokio::test]
async fn a_retry_inside_the_grace_window_gets_the_same_successor() {
    let app = spawn_app().await;
    let first = app.alice().await;
    let second = app.refresh(&first.refresh_token).await.unwrap();
    app.clock.advance(9_000);
    let again = app.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(again.refresh_token, second.refresh_token);
    assert!(app.introspect(&again.access_token).await.active);
    // Past the window the same retry is reuse.
    app.clock.advance(1_000);
    let status = app.refresh(&first.refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "REFRESH_TOKEN_REUSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_refreshes_of_one_token_share_one_successor() {
    let app = spawn_app().await;
    let first = app.alice().await;
    let calls = (0..32).map(|_| app.refresh(&first.refresh_token));
    let results: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("every refresh succeeds"))
        .collect();
    let successor = &results[0].refresh_token;
    assert!(results.iter().all(|r| &r.refresh_token == successor));
    // Exactly one live token: the successor rotates once, and then it is spent.
    let next = app.refresh(successor).await.unwrap();
    assert!(app.introspect(&next.refresh_token).await.active);
    assert!(!app.introspect(successor).await.active);
    assert!(!app.introspect(&first.refresh_token).await.active);
}

#[tokio::test]
async fn idle_and_absolute_lifetimes_end_sessions_with_their_own_reasons() {
    let app = spawn_app_with(|a| {
        a.refresh_ttl = Some("50m".into());
        a.session_max_age = Some("1h".into());
    })
    .await;
    let idle = app.alice().await;
    let busy = app.login("alice", "correct horse").await;
    app.clock.advance(40 * MINUTE);
    let busy = app.refresh(&busy.refresh_token).await.unwrap();
    assert_eq!(
        busy.refresh_expires_in,
        20 * 60,
        "capped by the absolute lifetime"
    );
    app.clock.advance(10 * MINUTE);
    let status = app.refresh(&idle.refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "REFRESH_TOKEN_EXPIRED");
    app.clock.advance(10 * MINUTE);
    let status = app.refresh(&busy.refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "SESSION_EXPIRED");
}

#[tokio::test]
async fn refresh_tokens_expire_after_fourteen_idle_days_by_default() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    app.clock.advance(14 * DAY);
    let status = app.refresh(&pair.refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "REFRESH_TOKEN_EXPIRED");
}

#[tokio::test]
async fn malformed_unknown_and_oversized_refresh_tokens_are_refused_clearly() {
    let app = spawn_app().await;
    let status = app.refresh("not-a-token").await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::InvalidArgument, "TOKEN_MALFORMED")
    );
    let status = app.refresh(&"x".repeat(9 * 1024)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let unknown = format!("lk_rt_{}", "A".repeat(43));
    let status = app.refresh(&unknown).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unauthenticated, "REFRESH_TOKEN_INVALID")
    );
}
