//! Real third-party peers against the real server: grpcurl (reflection, JSON transcoding, health),
//! PyJWT (local verification against the HTTP JWKS) and Google's grpcio.

use serde_json::json;

use crate::helpers::{
    app::{spawn_app, spawn_app_with},
    client::tamper_signature,
    peers::{PEERS_DIR, grpcurl, json_of, pyjwt_verify, python, run_peer},
    process::text,
};

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_and_describes_the_services_through_reflection() {
    let app = spawn_app().await;

    let list = grpcurl(app.grpc_addr, &[], &["list"]).await;
    assert!(
        list.status.success(),
        "grpcurl list failed: {}",
        text(&list)
    );
    let services = String::from_utf8_lossy(&list.stdout);
    let services: Vec<&str> = services.lines().collect();
    for expected in [
        "latchkey.v1.AuthService",
        "latchkey.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.contains(&expected),
            "{expected} not listed: {services:?}"
        );
    }

    let describe = grpcurl(app.grpc_addr, &[], &["describe", "latchkey.v1.AuthService"]).await;
    let description = text(&describe);
    assert!(
        describe.status.success(),
        "grpcurl describe failed: {description}"
    );
    assert!(
        description.contains("latchkey.v1.AuthService is a service"),
        "{description}"
    );
    for rpc in [
        "Login",
        "Refresh",
        "Revoke",
        "Introspect",
        "WatchRevocations",
    ] {
        assert!(
            description.contains(&format!("rpc {rpc} (")),
            "{rpc} not described: {description}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_logs_in_and_gets_a_working_token_pair() {
    let app = spawn_app().await;
    let user_id = app.add_user("alice", "correct horse", &["read"]).await;

    let body = json!({"username": "alice", "password": "correct horse"}).to_string();
    let login = grpcurl(
        app.grpc_addr,
        &["-d", &body],
        &["latchkey.v1.AuthService/Login"],
    )
    .await;
    let tokens = json_of(&login);

    let access = tokens["accessToken"]
        .as_str()
        .expect("accessToken in the JSON");
    let refresh = tokens["refreshToken"]
        .as_str()
        .expect("refreshToken in the JSON");
    assert!(
        refresh.starts_with("lk_rt_"),
        "refresh token without its prefix"
    );
    assert_eq!(tokens["tokenType"], "Bearer");
    assert_eq!(tokens["scope"], "read");
    let seen = app.introspect(access).await;
    assert!(
        seen.active,
        "the access token grpcurl received is not active"
    );
    assert_eq!(seen.sub, user_id);
    assert_eq!(json!(seen.session_id), tokens["sessionId"]);
    assert!(
        app.refresh(refresh).await.is_ok(),
        "the refresh token grpcurl received does not work"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_shows_unauthenticated_and_invalid_credentials_for_a_wrong_password() {
    let app = spawn_app().await;
    app.add_user("alice", "correct horse", &[]).await;

    let body = json!({"username": "alice", "password": "wrong horse"}).to_string();
    let login = grpcurl(
        app.grpc_addr,
        &["-d", &body],
        &["latchkey.v1.AuthService/Login"],
    )
    .await;
    let shown = text(&login);

    assert!(
        !login.status.success(),
        "a wrong password logged in: {shown}"
    );
    assert!(shown.contains("Code: Unauthenticated"), "{shown}");
    // grpcurl decodes the ErrorInfo detail only if reflection can describe google.rpc.ErrorInfo;
    // otherwise it prints the detail as base64 and nobody reading it sees the reason.
    assert!(
        shown.contains("INVALID_CREDENTIALS"),
        "grpcurl does not show the reason INVALID_CREDENTIALS (is google/rpc/error_details.proto \
         registered with reflection?): {shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_sees_the_health_service_serving() {
    let app = spawn_app().await;

    let overall = grpcurl(app.grpc_addr, &[], &["grpc.health.v1.Health/Check"]).await;
    assert_eq!(json_of(&overall)["status"], "SERVING");

    let body = json!({"service": "latchkey.v1.AuthService"}).to_string();
    let auth = grpcurl(
        app.grpc_addr,
        &["-d", &body],
        &["grpc.health.v1.Health/Check"],
    )
    .await;
    assert_eq!(json_of(&auth)["status"], "SERVING");
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_verifies_an_access_token_against_the_jwks() {
    let app = spawn_app().await;
    let user_id = app
        .add_user("alice", "correct horse", &["read", "write"])
        .await;
    let tokens = app.login("alice", "correct horse").await;

    let verified = json_of(&pyjwt_verify(app.http_addr, &tokens.access_token).await);

    assert_eq!(verified["header"]["alg"], "EdDSA");
    assert_eq!(verified["header"]["typ"], "at+jwt");
    let claims = &verified["claims"];
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["sid"], tokens.session_id.as_str());
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["client_id"], "default");
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_rejects_a_token_whose_signature_was_tampered_with() {
    let app = spawn_app().await;
    let token = app.alice().await.access_token;
    let tampered = tamper_signature(&token);

    let rejected = pyjwt_verify(app.http_addr, &tampered).await;

    assert_eq!(rejected.status.code(), Some(1), "{}", text(&rejected));
    let complaint = String::from_utf8_lossy(&rejected.stderr);
    assert!(complaint.contains("InvalidSignatureError"), "{complaint}");
    // The untouched token still verifies: the rejection is the tampering, not the setup.
    assert!(pyjwt_verify(app.http_addr, &token).await.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_verifies_es256_and_rs256_access_tokens() {
    for alg in ["ES256", "RS256"] {
        let app = spawn_app_with(|a| a.signing_alg = Some(alg.into())).await;
        let tokens = app.alice().await;

        let verified = json_of(&pyjwt_verify(app.http_addr, &tokens.access_token).await);

        assert_eq!(verified["header"]["alg"], alg);
        assert_eq!(verified["claims"]["sid"], tokens.session_id.as_str());
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcio_logs_in_introspects_and_reads_the_error_reason() {
    let app = spawn_app().await;
    let user_id = app.add_user("alice", "correct horse", &["read"]).await;
    let script = format!("{PEERS_DIR}/grpcio_client.py");
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let grpc_addr = app.grpc_addr.to_string();
    let args = [
        script.as_str(),
        &grpc_addr,
        proto_dir,
        "alice",
        "correct horse",
    ];

    let seen = json_of(&run_peer(&python(), &args, "").await);

    assert_eq!(seen["login"]["token_type"], "Bearer");
    assert_eq!(seen["login"]["refresh_prefix"], "lk_rt_");
    assert_eq!(seen["login"]["scope"], "read");
    assert_eq!(seen["introspect"]["active"], true);
    assert_eq!(seen["introspect"]["sub"], user_id.as_str());
    assert_eq!(seen["introspect"]["username"], "alice");
    assert_eq!(
        seen["introspect"]["session_id"],
        seen["login"]["session_id"]
    );
    assert_eq!(seen["introspect"]["token_type"], "access_token");
    let wrong = &seen["wrong_password"];
    assert_eq!(
        *wrong,
        json!({"code": "UNAUTHENTICATED", "reason": "INVALID_CREDENTIALS", "domain": "latchkey"})
    );
}

/// The README's operator session: an admin token, then CreateUser, ListUsers and ListEvents, each
/// through grpcurl and reflection alone.
#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_administers_users_and_lists_their_events_with_an_admin_token() {
    let app = spawn_app().await;
    app.add_user("admin", "an admin passphrase", &["latchkey.admin"])
        .await;
    let body = json!({"username": "admin", "password": "an admin passphrase",
        "scopes": ["latchkey.admin"]})
    .to_string();
    let login = grpcurl(
        app.grpc_addr,
        &["-d", &body],
        &["latchkey.v1.AuthService/Login"],
    )
    .await;
    let admin = json_of(&login)["accessToken"].as_str().unwrap().to_owned();
    let bearer = format!("authorization: Bearer {admin}");
    let as_admin = |body: String, method: &'static str| {
        let bearer = bearer.clone();
        let addr = app.grpc_addr;
        async move { grpcurl(addr, &["-H", &bearer, "-d", &body], &[method]).await }
    };

    let create = json!({"username": "bob", "password": "bob horse", "scopes": ["read"]});
    let bob = as_admin(create.to_string(), "latchkey.v1.AdminService/CreateUser").await;
    let bob = json_of(&bob);
    assert_eq!(
        (bob["username"].as_str(), bob["scopes"].clone()),
        (Some("bob"), json!(["read"]))
    );
    let users = as_admin(
        json!({"page_size": 50}).to_string(),
        "latchkey.v1.AdminService/ListUsers",
    )
    .await;
    let names: Vec<String> = json_of(&users)["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["admin", "bob"]);
    let kinds = json!({"kinds": ["user_created"]}).to_string();
    let events = as_admin(kinds, "latchkey.v1.AdminService/ListEvents").await;
    let events = json_of(&events);
    let newest = &events["events"][0];
    assert_eq!(newest["kind"], "user_created");
    assert_eq!(newest["userId"], bob["userId"]);

    // Without the scope, grpcurl shows why.
    app.add_user("carol", "carol horse", &["read"]).await;
    let carol = app.login("carol", "carol horse").await.access_token;
    let carol = format!("authorization: Bearer {carol}");
    let refused = grpcurl(
        app.grpc_addr,
        &["-H", &carol, "-d", "{}"],
        &["latchkey.v1.AdminService/ListUsers"],
    )
    .await;
    let shown = text(&refused);
    assert!(
        shown.contains("Code: PermissionDenied") && shown.contains("NOT_ALLOWED"),
        "{shown}"
    );
}
