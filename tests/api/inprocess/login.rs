//! Login, end to end: the pair a client gets, what a wrong password, a locked name, a disabled
//! account or an overloaded hasher look like, and which scopes are granted.

use futures_util::future::join_all;
use latchkey::{
    grpc::pb,
    service::{Admin, UserRef},
};
use tonic::Code;

use crate::helpers::{
    app::{
        disable_user, overloaded_burst, spawn_app, spawn_app_in, spawn_app_with, use_store,
        username,
    },
    client::{reason, with_bearer},
};

#[tokio::test]
async fn login_returns_a_bearer_pair_whose_access_token_introspects_active() {
    let app = spawn_app().await;
    let user_id = app
        .add_user("alice", "correct horse", &["read", "write"])
        .await;
    let pair = app.login("alice", "correct horse").await;
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 15 * 60);
    assert_eq!(pair.refresh_expires_in, 14 * 24 * 3600);
    assert_eq!(pair.scope, "read write");
    assert!(pair.refresh_token.starts_with("lk_rt_"));

    let info = app.introspect(&pair.access_token).await;
    assert!(info.active);
    assert_eq!(info.token_type, "access_token");
    assert_eq!(info.sub, user_id);
    assert_eq!(info.username, "alice");
    assert_eq!(info.session_id, pair.session_id);
    assert_eq!(info.scope, "read write");
    assert_eq!(info.client_id, "default");
    assert_eq!(
        (info.iss.as_str(), info.aud.as_slice()),
        ("latchkey", &["latchkey".to_string()][..])
    );
    assert_eq!(info.exp - info.iat, 900);
    assert!(!info.jti.is_empty());

    let refresh = app.introspect(&pair.refresh_token).await;
    assert!(refresh.active);
    assert_eq!(refresh.token_type, "refresh_token");
    assert_eq!(refresh.session_id, pair.session_id);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable() {
    let app = spawn_app().await;
    app.add_user("alice", "correct horse", &[]).await;
    let wrong = app.try_login("alice", "battery staple").await.unwrap_err();
    let unknown = app
        .try_login("mallory", "battery staple")
        .await
        .unwrap_err();
    for status in [&wrong, &unknown] {
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(reason(status), "INVALID_CREDENTIALS");
    }
    assert_eq!(wrong.message(), unknown.message());
}

#[tokio::test]
async fn oversized_or_empty_login_fields_are_invalid_arguments() {
    let app = spawn_app().await;
    for (name, password) in [
        ("", "x"),
        (&*"u".repeat(257), "x"),
        ("alice", ""),
        ("alice", &*"p".repeat(1025)),
    ] {
        let status = app.try_login(name, password).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{}/{}",
            name.len(),
            password.len()
        );
        assert_eq!(reason(&status), "INVALID_ARGUMENT");
    }
    let request = pb::LoginRequest {
        username: "alice".into(),
        password: "x".into(),
        device: "d".repeat(257),
        ..Default::default()
    };
    let status = app.client.clone().login(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_disabled_account_is_told_only_after_the_right_password() {
    let app = spawn_app().await;
    app.add_user("alice", "correct horse", &[]).await;
    disable_user(&app.service, "alice").await;
    let status = app.try_login("alice", "correct horse").await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::PermissionDenied, "ACCOUNT_DISABLED")
    );
    let status = app.try_login("alice", "wrong").await.unwrap_err();
    assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    let alice = UserRef::Name(username("alice"));
    let admin = Admin::command_line();
    app.service
        .set_disabled(&alice, false, &admin)
        .await
        .unwrap();
    app.login("alice", "correct horse").await;
}

#[tokio::test]
async fn ten_failures_lock_a_name_known_or_not_and_only_that_name() {
    let app = spawn_app().await;
    app.add_user("alice", "correct horse", &[]).await;
    app.add_user("bob", "bob's password", &[]).await;
    for name in ["alice", "nobody"] {
        for _ in 0..10 {
            let status = app.try_login(name, "wrong").await.unwrap_err();
            assert_eq!(reason(&status), "INVALID_CREDENTIALS");
        }
        let status = app.try_login(name, "correct horse").await.unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::ResourceExhausted, "TOO_MANY_ATTEMPTS")
        );
        assert_eq!(status.metadata().get("retry-after").unwrap(), "30");
    }
    app.login("bob", "bob's password").await;
    app.clock.advance(30_000);
    app.login("alice", "correct horse").await;
}

#[tokio::test]
async fn only_held_scopes_are_granted() {
    let app = spawn_app().await;
    app.add_user("alice", "correct horse", &["read", "write"])
        .await;
    let request = pb::LoginRequest {
        username: "alice".into(),
        password: "correct horse".into(),
        scopes: vec!["write".into(), "latchkey.admin".into()],
        client_id: "billing".into(),
        device: String::new(),
    };
    let pair = app
        .client
        .clone()
        .login(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pair.scope, "write");
    let info = app.introspect(&pair.access_token).await;
    assert_eq!(
        (info.scope.as_str(), info.client_id.as_str()),
        ("write", "billing")
    );
}

#[tokio::test]
async fn an_everyday_login_never_carries_admin_which_is_granted_only_by_name() {
    let app = spawn_app().await;
    app.add_user("root", "root password", &["read", "latchkey.admin"])
        .await;
    let bob_id = app.add_user("bob", "bob's password", &[]).await;
    let everyday = app.login("root", "root password").await;
    assert_eq!(everyday.scope, "read");
    assert_eq!(app.introspect(&everyday.access_token).await.scope, "read");
    let request = pb::LogoutAllRequest {
        user_id: bob_id.clone(),
    };
    let status = app
        .client
        .clone()
        .logout_all(with_bearer(request, &everyday.access_token))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "NOT_ALLOWED");

    let admin = app
        .login_with_scopes("root", "root password", &["latchkey.admin"])
        .await;
    assert_eq!(admin.scope, "latchkey.admin");
    let request = pb::LogoutAllRequest { user_id: bob_id };
    let response = app
        .client
        .clone()
        .logout_all(with_bearer(request, &admin.access_token))
        .await;
    assert!(response.is_ok());
}

#[tokio::test]
async fn a_login_rehashes_a_password_stored_under_other_argon2_parameters() {
    let app = spawn_app().await;
    app.add_user("alice", "correct horse", &[]).await;
    let url = app.database_url.clone();
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |a| {
        use_store(a, &url, None);
        a.password_iterations = Some(2);
    })
    .await;
    let store = app.store().await;
    let stored = || async {
        let user = store.user_by_name("alice").await.unwrap().unwrap();
        user.password_hash.expose().clone()
    };
    let old = stored().await;
    assert!(old.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{old}");
    assert!(app.try_login("alice", "wrong").await.is_err());
    assert_eq!(stored().await, old, "a failed login changes nothing");

    app.login("alice", "correct horse").await;
    let new = stored().await;
    assert!(new.starts_with("$argon2id$v=19$m=1024,t=2,p=1$"), "{new}");
    app.login("alice", "correct horse").await;
    assert_eq!(stored().await, new, "hashed under today's parameters: kept");
    assert!(app.try_login("alice", "wrong").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_beyond_the_hashing_queue_are_turned_away_as_overloaded() {
    let (_app, _names, results) = overloaded_burst().await;
    let reasons: Vec<String> = results
        .iter()
        .map(|r| reason(r.as_ref().unwrap_err()))
        .collect();
    let overloaded = reasons.iter().filter(|r| *r == "OVERLOADED").count();
    assert!(overloaded > 0, "a burst of 40 overflows a queue of 8");
    assert!(overloaded < 40, "the admitted ones are checked");
    let allowed = ["OVERLOADED", "INVALID_CREDENTIALS"];
    assert!(
        reasons.iter().all(|r| allowed.contains(&r.as_str())),
        "{reasons:?}"
    );
    let status = results
        .iter()
        .find_map(|r| r.as_ref().err().filter(|s| reason(s) == "OVERLOADED"));
    assert_eq!(status.unwrap().code(), Code::ResourceExhausted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_guesses_gets_at_most_ten_password_checks() {
    let app = spawn_app_with(|a| a.hash_concurrency = Some(16)).await;
    app.add_user("alice", "correct horse", &[]).await;
    // (No right password in the burst: a success resets the count, by design.)
    let results = join_all((0..30).map(|_| app.try_login("alice", "wrong"))).await;
    let reasons: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(reason)
        .collect();
    // Checked: answered on the password (a success or INVALID_CREDENTIALS), not turned away before.
    let checked = results.len()
        - reasons
            .iter()
            .filter(|r| *r != "INVALID_CREDENTIALS")
            .count();
    assert!(
        checked <= 10,
        "{checked} attempts were checked: {reasons:?}"
    );
    let allowed = ["INVALID_CREDENTIALS", "TOO_MANY_ATTEMPTS", "OVERLOADED"];
    assert!(
        reasons.iter().all(|r| allowed.contains(&r.as_str())),
        "{reasons:?}"
    );
    let status = app.try_login("alice", "correct horse").await.unwrap_err();
    assert_eq!(
        reason(&status),
        "TOO_MANY_ATTEMPTS",
        "locked, even with the right password"
    );
}
