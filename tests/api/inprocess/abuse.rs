//! The doors an attacker leans on, each shown shut: a flood of logins answered `OVERLOADED` writes
//! nothing, one address's failures lock it out whatever the name, a user's sessions are capped and
//! LogoutAll stays cheap however many there are, and an oversized request is `RESOURCE_EXHAUSTED`.

use futures_util::future::join_all;
use latchkey::grpc::pb;
use tonic::Code;

use crate::helpers::{
    app::{spawn_app, spawn_app_with},
    client::reason,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_turned_away_as_overloaded_has_written_nothing() {
    // One hash at a time at the OWASP cost, so a burst overflows the bounded queue.
    let app = spawn_app_with(|a| {
        a.hash_concurrency = Some(1);
        a.password_memory_kib = None;
        a.password_iterations = None;
    })
    .await;
    let names: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    let results = join_all(names.iter().map(|name| app.try_login(name, "guess"))).await;
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
