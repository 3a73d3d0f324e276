//! Envoy 1.40 with latchkey as its ext_authz server, in front of an upstream that echoes the
//! headers it received. Envoy runs the deployable `deploy/envoy/envoy.yaml` itself, with only its
//! addresses replaced.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use crate::helpers::{
    app::{TestApp, spawn_app},
    client::{HttpResponse, forged_authorizations, send},
    envoy::{Envoy, spawn_upstream},
};

const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;

/// latchkey, and Envoy with latchkey as its ext_authz server in front of the echoing upstream.
struct Gateway {
    app: TestApp,
    envoy: Envoy,
    /// Requests that reached the upstream.
    hits: Arc<AtomicUsize>,
}

async fn gateway() -> Gateway {
    let app = spawn_app().await;
    let (upstream, hits) = spawn_upstream().await;
    let envoy = Envoy::start(app.grpc_addr, upstream).await;
    Gateway { app, envoy, hits }
}

/// The headers the echoing upstream saw.
fn upstream_saw(response: &HttpResponse) -> BTreeMap<String, Vec<String>> {
    assert_eq!(
        response.status, 200,
        "request did not reach the upstream: {}",
        response.body
    );
    serde_json::from_str(&response.body).expect("the upstream's echo")
}

async fn get(gateway: &Gateway, headers: &[(&str, &str)]) -> HttpResponse {
    send(gateway.envoy.ingress, "/orders/42", headers)
        .await
        .expect("envoy answers")
}

fn assert_refused(response: &HttpResponse, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.body);
    assert_eq!(
        response.header("www-authenticate"),
        Some(INVALID_TOKEN),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_forwards_a_valid_token_with_identity_headers() {
    let gw = gateway().await;
    let user_id = gw.app.add_user("alice", "pw", &["read", "write"]).await;
    let tokens = gw.app.login("alice", "pw").await;

    let bearer = format!("Bearer {}", tokens.access_token);
    let seen = upstream_saw(&get(&gw, &[("authorization", &bearer)]).await);

    assert_eq!(seen["x-latchkey-sub"], [user_id]);
    assert_eq!(seen["x-latchkey-session"], [tokens.session_id]);
    assert_eq!(seen["x-latchkey-scope"], ["read write"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_answers_401_to_missing_and_forged_tokens() {
    let gw = gateway().await;
    let token = gw.app.alice().await.access_token;
    let forgeries = forged_authorizations(&token).await;
    assert_refused(&get(&gw, &[]).await, "no authorization header");
    for (what, authorization) in &forgeries {
        assert_refused(&get(&gw, &[("authorization", authorization)]).await, what);
    }
    assert_eq!(
        gw.hits.load(Ordering::SeqCst),
        0,
        "a refused request went upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_answers_401_to_a_revoked_token() {
    let gw = gateway().await;
    let token = gw.app.alice().await.access_token;
    let bearer = format!("Bearer {token}");
    assert_eq!(get(&gw, &[("authorization", &bearer)]).await.status, 200);

    gw.app.revoke(&token).await.expect("revoke answers");

    assert_refused(&get(&gw, &[("authorization", &bearer)]).await, "revoked");
    assert_eq!(
        gw.hits.load(Ordering::SeqCst),
        1,
        "a revoked token went upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_never_lets_a_client_spoof_latchkey_headers() {
    let gw = gateway().await;
    let user_id = gw.app.add_user("alice", "pw", &["read"]).await;
    let tokens = gw.app.login("alice", "pw").await;
    let bearer = format!("Bearer {}", tokens.access_token);

    let spoofed = [
        ("authorization", bearer.as_str()),
        ("x-latchkey-sub", "admin"),
        ("X-Latchkey-Session", "someone-elses-session"),
        ("x-latchkey-scope", "latchkey.admin"),
        ("x-latchkey-extra", "1"),
    ];
    let seen = upstream_saw(&get(&gw, &spoofed).await);

    assert_eq!(seen["x-latchkey-sub"], [user_id]);
    assert_eq!(seen["x-latchkey-session"], [tokens.session_id]);
    assert_eq!(seen["x-latchkey-scope"], ["read"]);
    assert!(!seen.contains_key("x-latchkey-extra"), "{seen:?}");

    // Without a token, spoofed headers get nowhere at all.
    assert_refused(&get(&gw, &spoofed[1..]).await, "spoofed, no token");
    assert_eq!(gw.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_fails_closed_when_latchkey_is_down() {
    let gw = gateway().await;
    let token = gw.app.alice().await.access_token;
    let bearer = format!("Bearer {token}");
    let Gateway { app, envoy, hits } = gw;

    app.stop().await;
    let response = send(envoy.ingress, "/", &[("authorization", &bearer)]).await;

    assert_eq!(response.expect("envoy answers").status, 403);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request went upstream unchecked"
    );
}
