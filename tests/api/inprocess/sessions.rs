//! Revoke, Introspect, LogoutAll, ListSessions and the revocation feed.

use latchkey::grpc::pb::{self, revocation_event::Target};
use tonic::Code;

use crate::helpers::{
    app::{disable_user, spawn_app},
    client::{http_get, next_revocation, reason, with_bearer},
};

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session_and_access_tokens() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    app.revoke(&pair.refresh_token).await.unwrap();
    assert!(!app.introspect(&pair.access_token).await.active);
    let status = app.refresh(&pair.refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "REFRESH_TOKEN_INVALID");
}

#[tokio::test]
async fn revoking_an_access_token_ends_its_session_too() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    let other = app.login("alice", "correct horse").await;
    app.revoke(&pair.access_token).await.unwrap();
    assert!(!app.introspect(&pair.access_token).await.active);
    assert!(app.refresh(&pair.refresh_token).await.is_err());
    assert!(
        app.introspect(&other.access_token).await.active,
        "other sessions live on"
    );
}

#[tokio::test]
async fn revoking_unknown_forged_or_malformed_tokens_is_ok_and_changes_nothing() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    // A character in the middle of the signature: always a different signature, never just
    // different padding bits.
    let mut forged = pair.access_token.clone().into_bytes();
    let middle = forged.len() - 20;
    forged[middle] = if forged[middle] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for token in [
        forged.as_str(),
        "garbage",
        &format!("lk_rt_{}", "A".repeat(43)),
        "lk_rt_short",
    ] {
        app.revoke(token).await.unwrap();
    }
    assert!(app.introspect(&pair.access_token).await.active);
    for token in ["", &"x".repeat(9 * 1024)] {
        let status = app.revoke(token).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
}

#[tokio::test]
async fn introspect_says_only_inactive_for_anything_not_active() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    let mut tampered = pair.access_token.clone();
    tampered.insert(tampered.find('.').unwrap() + 2, 'x');
    for token in ["", "garbage", tampered.as_str(), "lk_rt_nope"] {
        assert_eq!(
            app.introspect(token).await,
            pb::IntrospectResponse::default(),
            "{token:.20}"
        );
    }
    app.clock.advance(15 * 60_000 + 5_000);
    assert_eq!(
        app.introspect(&pair.access_token).await,
        pb::IntrospectResponse::default()
    );
    let request = pb::IntrospectRequest {
        token: "x".repeat(9 * 1024),
        token_type_hint: String::new(),
    };
    let status = app.client.clone().introspect(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn logout_all_ends_every_session_but_not_the_next_login() {
    let app = spawn_app().await;
    let one = app.alice().await;
    let two = app.login("alice", "correct horse").await;
    let response = app
        .client
        .clone()
        .logout_all(with_bearer(
            pb::LogoutAllRequest::default(),
            &one.access_token,
        ))
        .await;
    assert_eq!(response.unwrap().into_inner().revoked_sessions, 2);
    for pair in [&one, &two] {
        assert!(!app.introspect(&pair.access_token).await.active);
        assert!(app.refresh(&pair.refresh_token).await.is_err());
    }
    // Same second, same clock: a session opened after LogoutAll returned is unaffected.
    let fresh = app.login("alice", "correct horse").await;
    assert!(app.introspect(&fresh.access_token).await.active);
    assert!(app.refresh(&fresh.refresh_token).await.is_ok());
}

#[tokio::test]
async fn logout_all_of_another_user_needs_the_admin_scope() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob_id = app.add_user("bob", "bob's password", &[]).await;
    let bob = app.login("bob", "bob's password").await;
    app.add_user("root", "root password", &["latchkey.admin"])
        .await;
    let root = app
        .login_with_scopes("root", "root password", &["latchkey.admin"])
        .await;

    let by_alice = pb::LogoutAllRequest {
        user_id: bob_id.clone(),
    };
    let status = app
        .client
        .clone()
        .logout_all(with_bearer(by_alice, &alice.access_token))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::PermissionDenied, "NOT_ALLOWED")
    );
    assert!(app.introspect(&bob.access_token).await.active);

    let by_root = pb::LogoutAllRequest { user_id: bob_id };
    let revoked = app
        .client
        .clone()
        .logout_all(with_bearer(by_root, &root.access_token))
        .await
        .unwrap();
    assert_eq!(revoked.into_inner().revoked_sessions, 1);
    assert!(!app.introspect(&bob.access_token).await.active);
    assert!(app.introspect(&root.access_token).await.active);
}

#[tokio::test]
async fn revoking_what_is_already_revoked_writes_nothing() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    let ended = app.login("alice", "correct horse").await;
    let store = app.store().await;
    app.revoke(&pair.access_token).await.unwrap();
    let feed = store.revocations_after(0, 100).await.unwrap();
    assert_eq!(feed.len(), 2, "its session and its jti");
    for token in [&pair.access_token, &pair.access_token, &pair.refresh_token] {
        app.revoke(token).await.unwrap();
    }
    assert_eq!(store.revocations_after(0, 100).await.unwrap(), feed);

    // A session ended by LogoutAll: its access token revokes nothing more either.
    let logout = with_bearer(pb::LogoutAllRequest::default(), &ended.access_token);
    app.client.clone().logout_all(logout).await.unwrap();
    let feed = store.revocations_after(0, 100).await.unwrap();
    app.revoke(&ended.access_token).await.unwrap();
    assert_eq!(store.revocations_after(0, 100).await.unwrap(), feed);
}

#[tokio::test]
async fn calls_for_the_bearer_refuse_a_missing_or_bad_token() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    let status = app
        .client
        .clone()
        .list_sessions(pb::ListSessionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unauthenticated, "ACCESS_TOKEN_INVALID")
    );
    let refresh_as_bearer = with_bearer(pb::LogoutAllRequest::default(), &pair.refresh_token);
    let status = app
        .client
        .clone()
        .logout_all(refresh_as_bearer)
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "ACCESS_TOKEN_INVALID");
}

#[tokio::test]
async fn list_sessions_shows_the_users_live_sessions_and_marks_the_callers() {
    let app = spawn_app().await;
    let one = app.alice().await;
    let two = app.login("alice", "correct horse").await;
    let gone = app.login("alice", "correct horse").await;
    app.revoke(&gone.refresh_token).await.unwrap();
    let sessions = app
        .client
        .clone()
        .list_sessions(with_bearer(pb::ListSessionsRequest {}, &two.access_token))
        .await;
    let sessions = sessions.unwrap().into_inner().sessions;
    assert_eq!(sessions.len(), 2);
    let current: Vec<_> = sessions
        .iter()
        .filter(|s| s.current)
        .map(|s| s.session_id.clone())
        .collect();
    assert_eq!(current.as_slice(), std::slice::from_ref(&two.session_id));
    let first = sessions
        .iter()
        .find(|s| s.session_id == one.session_id)
        .unwrap();
    assert_eq!(
        (
            first.device.as_str(),
            first.ip.as_str(),
            first.client_id.as_str()
        ),
        ("test-device", "127.0.0.1", "default")
    );
    assert!(
        first.created_at > 0
            && first.last_used_at >= first.created_at
            && first.expires_at > first.created_at
    );
}

#[tokio::test]
async fn get_jwks_serves_the_same_public_document_as_http() {
    let app = spawn_app().await;
    let grpc = app
        .client
        .clone()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .jwks_json;
    let (status, http) = http_get(app.http_addr, "/.well-known/jwks.json").await;
    assert_eq!(status, 200);
    assert_eq!(grpc, http);
    let jwks: serde_json::Value = serde_json::from_str(&grpc).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(key.get("d").is_none());
}

#[tokio::test]
async fn the_revocation_feed_streams_every_kind_in_order_and_resumes_by_seq() {
    let app = spawn_app().await;
    let user_id = app.add_user("alice", "correct horse", &[]).await;
    let revoked = app.login("alice", "correct horse").await;
    let reused = app.login("alice", "correct horse").await;
    let mut stream = app
        .client
        .clone()
        .watch_revocations(pb::WatchRevocationsRequest { after_seq: 0 })
        .await
        .unwrap()
        .into_inner();

    app.revoke(&revoked.access_token).await.unwrap();
    let spent = reused.refresh_token.clone();
    app.refresh(&spent).await.unwrap();
    app.clock.advance(11_000);
    assert!(app.refresh(&spent).await.is_err());
    disable_user(&app.service, "alice").await;

    let mut events = Vec::new();
    while events.len() < 4 {
        let next = next_revocation(&mut stream).await;
        events.push(next.expect("stream open").expect("event"));
    }
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let targets: Vec<_> = events.iter().map(|e| e.target.clone().unwrap()).collect();
    assert_eq!(targets[0], Target::SessionId(revoked.session_id.clone()));
    assert!(matches!(&targets[1], Target::Jti(_)));
    assert_eq!(targets[2], Target::SessionId(reused.session_id.clone()));
    assert!(
        matches!(&targets[3], Target::User(cutoff) if cutoff.user_id == user_id && cutoff.not_before > 0)
    );
    assert!(events.iter().all(|e| e.expires_at > 0));

    let resumed = pb::WatchRevocationsRequest {
        after_seq: events[1].seq,
    };
    let mut stream = app
        .client
        .clone()
        .watch_revocations(resumed)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next_revocation(&mut stream).await.unwrap().unwrap(),
        events[2]
    );
}
