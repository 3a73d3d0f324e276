//! TLS and mTLS on both ports, with tonic's own TLS client (rustls): the gRPC port serves only TLS
//! and the HTTP port only HTTPS; under mTLS a client without a certificate, or with one from
//! another CA, is refused at the handshake; the caller lists let through the identities they name
//! (URI SAN, DNS SAN or CN; exact or `prefix/*`) on Introspect, WatchRevocations and ext_authz
//! Check, and answer everyone else `CALLER_NOT_ALLOWED` while Login still works; and certificate
//! files replaced on disk reach new connections within 10 s. (`peers::tls` does the same through
//! grpcurl, PyJWT and Envoy.)

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, authorization_client::AuthorizationClient,
};
use latchkey::grpc::pb;
use tokio::{io::AsyncReadExt, net::TcpStream};
use tonic::{Code, Status, transport::Channel};

use crate::helpers::{
    app::{TestApp, spawn_app_with},
    certs::{Ca, Identity, Pair, ServerTls as Setup},
    client::{https_get, lazy_channel, reason, send, tls_channel as connect, watch_revocations},
};

fn auth(channel: Channel) -> pb::auth_service_client::AuthServiceClient<Channel> {
    pb::auth_service_client::AuthServiceClient::new(channel)
}

async fn login(channel: &Channel) -> Result<pb::TokenResponse, Status> {
    let request = pb::LoginRequest {
        username: "alice".into(),
        password: "correct horse".into(),
        ..Default::default()
    };
    auth(channel.clone())
        .login(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Login over a fresh connection: what the server answered, or the connection's failure.
async fn login_over(addr: SocketAddr, ca_pem: &str, client: Option<&Pair>) -> Result<(), String> {
    let channel = connect(addr, ca_pem, client)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    login(&channel)
        .await
        .map(drop)
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

async fn introspect(channel: &Channel, token: &str) -> Result<pb::IntrospectResponse, Status> {
    let request = pb::IntrospectRequest {
        token: token.into(),
        ..Default::default()
    };
    auth(channel.clone())
        .introspect(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn check(channel: &Channel) -> Result<(), Status> {
    AuthorizationClient::new(channel.clone())
        .check(CheckRequest::default())
        .await
        .map(drop)
}

/// A connection to `app` with a client certificate of the test CA naming `identity`.
async fn as_caller(app: &TestApp, setup: &Setup, identity: Identity<'_>) -> Channel {
    let client = setup.ca.client(identity);
    connect(app.grpc_addr, &setup.ca.pem, Some(&client))
        .await
        .expect("an mTLS connection")
}

async fn tls_app(setup: &Setup, mtls: bool, callers: Option<&str>) -> TestApp {
    let app = spawn_app_with(|a| {
        setup.args(a, mtls);
        a.service_callers = callers.map(str::to_owned);
    })
    .await;
    app.add_user("alice", "correct horse", &[]).await;
    app
}

#[tokio::test]
async fn tls_serves_grpc_and_https_and_plaintext_gets_nothing() {
    let setup = Setup::new();
    let app = tls_app(&setup, false, None).await;

    let channel = connect(app.grpc_addr, &setup.ca.pem, None).await.unwrap();
    let tokens = login(&channel).await.expect("Login over TLS");
    let found = introspect(&channel, &tokens.access_token).await.unwrap();
    assert!(found.active, "{found:?}");

    // Plaintext gRPC to the TLS port: the connection fails, nothing is served.
    let plain = auth(lazy_channel(app.grpc_addr))
        .login(pb::LoginRequest::default())
        .await
        .expect_err("plaintext gRPC is served");
    assert!(transport_failure(&plain), "{plain:?}");

    // A client that does not trust the server's CA refuses it.
    let other = Ca::new("another CA");
    let refused = login_over(app.grpc_addr, &other.pem, None).await;
    assert!(refused.is_err(), "a server of an untrusted CA was accepted");

    // HTTPS on the HTTP port; plaintext HTTP gets no answer.
    let jwks = https_get(app.http_addr, "/.well-known/jwks.json", &setup.ca.pem)
        .await
        .expect("JWKS over HTTPS");
    assert_eq!(jwks.status, 200, "{}", jwks.body);
    assert!(jwks.body.contains("\"keys\""), "{}", jwks.body);
    let ready = https_get(app.http_addr, "/readyz", &setup.ca.pem).await;
    assert_eq!(ready.unwrap().status, 200);
    assert_eq!(plaintext_http_status(app.http_addr).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate_or_with_one_from_another_ca() {
    let setup = Setup::new();
    let app = tls_app(&setup, true, None).await;
    let good = setup.ca.client(Identity::Uri("spiffe://test/ns/a/sa/api"));
    login_over(app.grpc_addr, &setup.ca.pem, Some(&good))
        .await
        .expect("a client with a certificate of the client CA");

    let none = login_over(app.grpc_addr, &setup.ca.pem, None).await;
    assert!(none.is_err(), "served without a client certificate");
    let stranger = Ca::new("another CA").client(Identity::Uri("spiffe://test/ns/a/sa/api"));
    let foreign = login_over(app.grpc_addr, &setup.ca.pem, Some(&stranger)).await;
    assert!(foreign.is_err(), "served a certificate of another CA");
    for refused in [none, foreign] {
        let said = refused.unwrap_err();
        assert!(
            said.contains("transport error") || said.contains("connect"),
            "{said}"
        );
    }

    // The HTTP port never asks for a client certificate (probes, JWKS fetchers).
    let ready = https_get(app.http_addr, "/readyz", &setup.ca.pem).await;
    assert_eq!(
        ready.expect("HTTPS without a client certificate").status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn caller_lists_guard_introspect_watch_and_check_and_leave_login_alone() {
    let setup = Setup::new();
    let list = "spiffe://test/ns/payments/*, gateway.internal, billing";
    let app = tls_app(&setup, true, Some(list)).await;
    let listed = [
        Identity::Uri("spiffe://test/ns/payments/sa/api"),
        Identity::Dns("gateway.internal"),
        Identity::CommonName("billing"),
    ];
    let unlisted = [
        // Under a sibling path that shares the prefix's text.
        Identity::Uri("spiffe://test/ns/payments-eu/sa/api"),
        Identity::Uri("spiffe://test/ns/payments"),
        Identity::Dns("intruder.internal"),
        Identity::CommonName("Billing"),
    ];

    let first = as_caller(
        &app,
        &setup,
        Identity::Uri("spiffe://test/ns/payments/sa/api"),
    )
    .await;
    let tokens = login(&first).await.unwrap();

    for identity in listed {
        let channel = as_caller(&app, &setup, identity).await;
        let found = introspect(&channel, &tokens.access_token).await.unwrap();
        assert!(found.active);
        watch_revocations(&auth(channel.clone()), 0)
            .await
            .expect("WatchRevocations for a listed caller");
        check(&channel).await.expect("Check for a listed caller");
    }
    for identity in unlisted {
        let channel = as_caller(&app, &setup, identity).await;
        let refused = [
            introspect(&channel, &tokens.access_token).await.map(drop),
            watch_revocations(&auth(channel.clone()), 0).await.map(drop),
            check(&channel).await,
        ];
        for status in refused {
            let status = status.expect_err("an unlisted caller was served");
            assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
            assert_eq!(reason(&status), "CALLER_NOT_ALLOWED");
            assert!(
                status.message().contains("may not make this call"),
                "{status:?}"
            );
        }
        // Login, Refresh and the rest are for everyone who got through TLS.
        let mine = login(&channel).await.expect("Login for an unlisted caller");
        let refreshed = auth(channel.clone())
            .refresh(pb::RefreshRequest {
                refresh_token: mine.refresh_token,
            })
            .await;
        refreshed.expect("Refresh for an unlisted caller");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_refusal_names_the_callers_own_identity() {
    let setup = Setup::new();
    let app = tls_app(&setup, true, Some("spiffe://test/ns/a/sa/api")).await;
    let channel = as_caller(&app, &setup, Identity::Uri("spiffe://test/ns/b/sa/web")).await;
    let status = introspect(&channel, "x").await.unwrap_err();
    assert!(
        status.message().contains("\"spiffe://test/ns/b/sa/web\""),
        "{status:?}"
    );
    assert!(
        !status.message().contains("ns/a"),
        "the list leaked: {status:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn replaced_certificate_files_reach_new_connections_within_ten_seconds() {
    let setup = Setup::new();
    let app = tls_app(&setup, false, None).await;
    let before = connect(app.grpc_addr, &setup.ca.pem, None).await.unwrap();
    login(&before).await.unwrap();

    // A certificate manager rotates the pair in place, to one of a new CA.
    let next = Ca::new("next CA");
    let replaced = Instant::now();
    next.localhost().write(setup.dir.path(), "server");
    let seen = loop {
        if login_over(app.grpc_addr, &next.pem, None).await.is_ok() {
            break replaced.elapsed();
        }
        assert!(
            replaced.elapsed() < Duration::from_secs(10),
            "the new certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("new certificate served {seen:?} after the files were replaced");
    // New connections no longer get the old certificate; HTTPS follows too.
    assert!(
        login_over(app.grpc_addr, &setup.ca.pem, None)
            .await
            .is_err()
    );
    let https = https_get(app.http_addr, "/healthz", &next.pem).await;
    assert_eq!(https.expect("HTTPS with the new certificate").status, 200);
    // The connection made before keeps working.
    login(&before)
        .await
        .expect("an open connection survives the rotation");

    // A half-written replacement (a key that is not the certificate's) is skipped: the last
    // good pair stays in use.
    let broken = next.localhost();
    std::fs::write(&setup.server.cert, &broken.cert).unwrap();
    tokio::time::sleep(latchkey::listen::tls::RELOAD_EVERY * 2).await;
    login_over(app.grpc_addr, &next.pem, None)
        .await
        .expect("the last good pair is still served");
    app.stop().await;
}

#[tokio::test]
async fn a_silent_connection_to_a_tls_port_is_closed_at_the_handshake_deadline() {
    let setup = Setup::new();
    let app = spawn_app_with(|a| {
        setup.args(a, true);
        a.grpc_handshake_timeout = Some("500ms".into());
        a.http_header_timeout = Some("500ms".into());
    })
    .await;
    for addr in [app.grpc_addr, app.http_addr] {
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let opened = Instant::now();
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut sink));
        read.await
            .expect("a silent TLS connection was kept open")
            .ok();
        assert!(opened.elapsed() >= Duration::from_millis(400), "{addr}");
    }
    // And the ports still serve.
    let https = https_get(app.http_addr, "/healthz", &setup.ca.pem).await;
    assert_eq!(
        https.expect("HTTPS after the silent connections").status,
        200
    );
    app.stop().await;
}

/// The connection failed under the call (tonic says `UNAVAILABLE`, or `UNKNOWN` "transport error"
/// when the server closed it mid-request); no status from the server.
fn transport_failure(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown)
        && status.message().contains("transport error")
        && status.metadata().is_empty()
}

/// Plaintext HTTP to a TLS port: the status answered, 0 when no HTTP came back.
async fn plaintext_http_status(addr: SocketAddr) -> u16 {
    send(addr, "/healthz", &[]).await.map_or(0, |r| r.status)
}
