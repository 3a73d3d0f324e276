//! ext_authz `Check` (`envoy.service.auth.v3.Authorization`) called the way Envoy calls it, with no
//! Envoy: an active bearer token is let through with the identity headers set by latchkey and every
//! client-sent `x-latchkey-*` header removed or overwritten; anything else is denied with HTTP 401
//! and `www-authenticate: Bearer error="invalid_token"`. (`peers::envoy` runs the real Envoy.)

use envoy_types::pb::envoy::{
    config::core::v3::header_value_option::HeaderAppendAction,
    service::auth::v3::{
        AttributeContext, CheckRequest, CheckResponse, OkHttpResponse, attribute_context,
        authorization_client::AuthorizationClient, check_response::HttpResponse,
    },
};
use latchkey::service::{Admin, UserRef};
use tonic::Code;

use crate::helpers::{
    app::{TestApp, spawn_app, username},
    client::{forged_authorizations, lazy_channel},
};

const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;
const IDENTITY: [&str; 3] = ["x-latchkey-sub", "x-latchkey-session", "x-latchkey-scope"];

/// `Check` for a request to `/orders/42` with these headers. Envoy sends header names in lower
/// case, whatever the client wrote.
async fn check(app: &TestApp, headers: &[(&str, &str)]) -> CheckResponse {
    let http = attribute_context::HttpRequest {
        method: "GET".into(),
        path: "/orders/42".into(),
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect(),
        ..Default::default()
    };
    let request = attribute_context::Request {
        http: Some(http),
        ..Default::default()
    };
    let attributes = AttributeContext {
        request: Some(request),
        ..Default::default()
    };
    let mut client = AuthorizationClient::new(lazy_channel(app.grpc_addr));
    let response = client
        .check(CheckRequest {
            attributes: Some(attributes),
        })
        .await;
    response.expect("Check answers").into_inner()
}

fn code(response: &CheckResponse) -> Code {
    Code::from(response.status.as_ref().map_or(0, |s| s.code))
}

/// The OK answer of a check that let the request through.
fn allowed(response: &CheckResponse) -> &OkHttpResponse {
    assert_eq!(code(response), Code::Ok, "{response:?}");
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not an OK response: {other:?}"),
    }
}

/// The headers an OK answer sets upstream: (name, value, whether it overwrites what was there).
fn set_headers(ok: &OkHttpResponse) -> Vec<(String, String, bool)> {
    let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
    ok.headers
        .iter()
        .map(|option| {
            let header = option.header.as_ref().expect("a header");
            let overwrites = option.append_action == overwrite;
            (header.key.clone(), header.value.clone(), overwrites)
        })
        .collect()
}

fn assert_denied(response: &CheckResponse, what: &str) {
    assert_eq!(
        code(response),
        Code::Unauthenticated,
        "{what}: {response:?}"
    );
    let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
        panic!("{what}: not a denied response: {response:?}");
    };
    assert_eq!(denied.status.as_ref().map(|s| s.code), Some(401), "{what}");
    let www_authenticate = denied
        .headers
        .iter()
        .filter_map(|option| option.header.as_ref())
        .find(|h| h.key.eq_ignore_ascii_case("www-authenticate"))
        .map(|h| h.value.as_str());
    assert_eq!(www_authenticate, Some(INVALID_TOKEN), "{what}");
}

#[tokio::test]
async fn check_lets_a_valid_bearer_through_with_the_identity_headers() {
    let app = spawn_app().await;
    let user_id = app.add_user("alice", "pw", &["read", "write"]).await;
    let tokens = app.login("alice", "pw").await;

    let bearer = format!("Bearer {}", tokens.access_token);
    let response = check(&app, &[("authorization", &bearer)]).await;

    let set = set_headers(allowed(&response));
    let expected = [user_id, tokens.session_id, "read write".to_owned()];
    for (name, value) in IDENTITY.into_iter().zip(expected) {
        assert!(
            set.contains(&(name.to_owned(), value.clone(), true)),
            "{name}: {value} (overwriting) in {set:?}"
        );
    }
}

#[tokio::test]
async fn check_removes_or_overwrites_every_client_sent_latchkey_header() {
    let app = spawn_app().await;
    let user_id = app.add_user("alice", "pw", &["read"]).await;
    let tokens = app.login("alice", "pw").await;
    let bearer = format!("Bearer {}", tokens.access_token);
    let spoofed = [
        ("authorization", bearer.as_str()),
        ("x-latchkey-sub", "admin"),
        ("X-Latchkey-Session", "someone-elses-session"),
        ("x-latchkey-scope", "latchkey.admin"),
        ("x-latchkey-extra", "1"),
        ("X-LATCHKEY-ROLE", "root"),
    ];

    let response = check(&app, &spoofed).await;

    let ok = allowed(&response);
    let set = set_headers(ok);
    let removed = |name: &str| {
        ok.headers_to_remove
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
    };
    let overwritten = |name: &str| {
        set.iter()
            .any(|(set_name, _, overwrites)| *overwrites && set_name.eq_ignore_ascii_case(name))
    };
    for (name, _) in &spoofed[1..] {
        assert!(
            removed(name) || overwritten(name),
            "{name} reaches the upstream as the client sent it: {ok:?}"
        );
    }
    for (name, value) in IDENTITY
        .into_iter()
        .zip([user_id, tokens.session_id, "read".into()])
    {
        assert!(
            set.contains(&(name.to_owned(), value, true)),
            "{name}: {set:?}"
        );
        assert!(!removed(name), "{name} is set and removed: {ok:?}");
    }

    // Without a token, spoofed headers get nowhere at all.
    assert_denied(&check(&app, &spoofed[1..]).await, "spoofed, no token");
}

#[tokio::test]
async fn check_denies_missing_forged_and_revoked_tokens_with_401_invalid_token() {
    let app = spawn_app().await;
    let token = app.alice().await.access_token;
    let forgeries = forged_authorizations(&token).await;
    assert_denied(&check(&app, &[]).await, "no authorization header");
    for (what, authorization) in &forgeries {
        assert_denied(
            &check(&app, &[("authorization", authorization)]).await,
            what,
        );
    }

    let bearer = format!("Bearer {token}");
    allowed(&check(&app, &[("authorization", &bearer)]).await);
    app.revoke(&token).await.expect("revoke answers");
    assert_denied(&check(&app, &[("authorization", &bearer)]).await, "revoked");
}

#[tokio::test]
async fn check_denies_every_token_of_a_deleted_user() {
    let app = spawn_app().await;
    let first = app.alice().await.access_token;
    let second = app.login("alice", "correct horse").await.access_token;
    let bearers = [first, second].map(|token| format!("Bearer {token}"));
    for bearer in &bearers {
        allowed(&check(&app, &[("authorization", bearer)]).await);
    }
    let alice = UserRef::Name(username("alice"));
    let revoked = app
        .service
        .delete_user(&alice, &Admin::command_line())
        .await;
    assert_eq!(revoked.expect("deleted"), 2);
    for bearer in &bearers {
        assert_denied(
            &check(&app, &[("authorization", bearer)]).await,
            "deleted user",
        );
    }
}
