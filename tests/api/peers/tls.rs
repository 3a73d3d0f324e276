//! The real peers against `latchkey serve` on TLS, with certificates the test makes: grpcurl over
//! TLS and mTLS (and refused in plaintext, without a client certificate or with one of another
//! CA), the caller lists, certificate files replaced on disk, PyJWT fetching the JWKS over HTTPS,
//! Envoy's ext_authz over mTLS (deploy/envoy/envoy-mtls.yaml) and Google's grpcio over mTLS. A
//! little over 300 lines: every peer against one kind of server, with the grpcurl steps they share
//! kept beside them.

use std::{
    process::Output,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::helpers::{
    certs::{Ca, Identity, PairFiles, ServerTls},
    client::send,
    envoy::{Envoy, EnvoyTls, spawn_upstream},
    peers::{GrpcurlTls, grpcio_over_tls, grpcurl, grpcurl_tls, json_of, pyjwt_verify_over_https},
    process::{Server, text},
};

const LOGIN: &str = "latchkey.v1.AuthService/Login";

/// Logs `alice` in with grpcurl over `tls`: the token response, as JSON.
async fn login(server: &Server, tls: &GrpcurlTls) -> Value {
    let body = json!({"username": "alice", "password": "correct horse"}).to_string();
    json_of(&grpcurl_tls(server.grpc_addr, tls, &["-d", &body], &[LOGIN]).await)
}

/// A TLS server (mTLS with `mtls`) with the settings `extra`, and the user `alice`.
async fn serve_with_alice(files: &ServerTls, mtls: bool, extra: &[(&'static str, &str)]) -> Server {
    let server = files.serve(mtls, extra).await;
    server.add_user("alice", "correct horse").await;
    server
}

/// `grpcurl list` over `tls` lists AuthService and Health.
async fn assert_lists_the_services(server: &Server, tls: &GrpcurlTls) {
    let list = grpcurl_tls(server.grpc_addr, tls, &[], &["list"]).await;
    let services = text(&list);
    assert!(list.status.success(), "grpcurl list failed: {services}");
    for expected in ["latchkey.v1.AuthService", "grpc.health.v1.Health"] {
        assert!(
            services.lines().any(|l| l == expected),
            "{expected} not listed: {services}"
        );
    }
}

/// A call that must have failed, with what grpcurl said.
fn assert_refused(output: &Output, what: &str) {
    assert!(
        !output.status.success(),
        "{what}: accepted: {}",
        text(output)
    );
    eprintln!("{what}: refused as it should be: {}", text(output).trim());
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_over_tls_lists_and_logs_in_and_plaintext_is_refused() {
    let files = ServerTls::new();
    let server = serve_with_alice(&files, false, &[]).await;
    let tls = GrpcurlTls::trusting(&files.ca_file);

    assert_lists_the_services(&server, &tls).await;
    let tokens = login(&server, &tls).await;
    assert_eq!(tokens["tokenType"], "Bearer");
    let refresh = tokens["refreshToken"].as_str().expect("a refresh token");
    assert!(refresh.starts_with("lk_rt_"), "{tokens}");

    let plaintext = grpcurl(server.grpc_addr, &["-connect-timeout", "5"], &["list"]).await;
    assert_refused(&plaintext, "plaintext to the TLS port");
    let other = Ca::new("another CA").write(files.dir.path(), "other-ca.crt");
    let untrusting = GrpcurlTls::trusting(&other);
    let untrusted = grpcurl_tls(server.grpc_addr, &untrusting, &[], &["list"]).await;
    assert_refused(&untrusted, "a server certificate of a CA not trusted");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_over_mtls_needs_a_client_certificate_of_the_client_ca() {
    let files = ServerTls::new();
    let server = serve_with_alice(&files, true, &[]).await;
    let client = files.client(Identity::Uri("spiffe://test/ns/shop/sa/web"), "web");
    let mtls = GrpcurlTls::trusting(&files.ca_file).presenting(&client);

    assert_lists_the_services(&server, &mtls).await;
    assert_eq!(login(&server, &mtls).await["tokenType"], "Bearer");

    let without = GrpcurlTls::trusting(&files.ca_file);
    let list = grpcurl_tls(server.grpc_addr, &without, &[], &["list"]).await;
    assert_refused(&list, "no client certificate");
    let stranger = Ca::new("another CA")
        .client(Identity::Uri("spiffe://test/ns/shop/sa/web"))
        .write(files.dir.path(), "stranger");
    let foreign = GrpcurlTls::trusting(&files.ca_file).presenting(&stranger);
    let list = grpcurl_tls(server.grpc_addr, &foreign, &[], &["list"]).await;
    assert_refused(&list, "a client certificate of another CA");
}

/// Introspect of `token` as the holder of `tls`'s client certificate.
async fn introspect_as(server: &Server, tls: &GrpcurlTls, token: &str) -> Output {
    let body = json!({ "token": token }).to_string();
    let rpc = "latchkey.v1.AuthService/Introspect";
    grpcurl_tls(server.grpc_addr, tls, &["-d", &body], &[rpc]).await
}

/// A call refused with PERMISSION_DENIED / CALLER_NOT_ALLOWED.
fn assert_caller_not_allowed(output: &Output, who: &str) {
    let shown = text(output);
    assert!(!output.status.success(), "{who} was answered: {shown}");
    assert!(
        shown.contains("Code: PermissionDenied") && shown.contains("CALLER_NOT_ALLOWED"),
        "{who}: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_listed_callers_introspect_and_watch_while_anyone_logs_in() {
    let files = ServerTls::new();
    let callers = "spiffe://test/ns/payments/sa/api, spiffe://test/ns/edge/*,billing.test,ops-tool";
    let server = serve_with_alice(&files, true, &[("LATCHKEY_SERVICE_CALLERS", callers)]).await;
    let mut made = 0;
    let mut as_caller = |identity| {
        made += 1;
        let client = files.client(identity, &format!("caller{made}"));
        GrpcurlTls::trusting(&files.ca_file).presenting(&client)
    };
    let allowed = [
        (
            "exact URI",
            Identity::Uri("spiffe://test/ns/payments/sa/api"),
        ),
        (
            "URI under a prefix",
            Identity::Uri("spiffe://test/ns/edge/sa/envoy"),
        ),
        ("DNS name", Identity::Dns("billing.test")),
        ("common name", Identity::CommonName("ops-tool")),
    ]
    .map(|(who, identity)| (who, as_caller(identity)));
    let denied = [
        (
            "another URI",
            Identity::Uri("spiffe://test/ns/payments/sa/api2"),
        ),
        (
            "beside the prefix",
            Identity::Uri("spiffe://test/ns/edgeworks/sa/x"),
        ),
        ("another DNS name", Identity::Dns("other.test")),
        ("another common name", Identity::CommonName("someone")),
    ]
    .map(|(who, identity)| (who, as_caller(identity)));

    for (who, tls) in &denied {
        let tokens = login(&server, tls).await;
        let token = tokens["accessToken"]
            .as_str()
            .expect("Login answers anyone");
        assert_caller_not_allowed(&introspect_as(&server, tls, token).await, who);
    }
    let watch = "latchkey.v1.AuthService/WatchRevocations";
    let watched = grpcurl_tls(server.grpc_addr, &denied[0].1, &["-d", "{}"], &[watch]).await;
    assert_caller_not_allowed(&watched, "a caller not listed, on WatchRevocations");

    for (who, tls) in &allowed {
        let tokens = login(&server, tls).await;
        let token = tokens["accessToken"].as_str().expect("an access token");
        let seen = json_of(&introspect_as(&server, tls, token).await);
        assert_eq!(seen["active"], true, "{who}: {seen}");
        assert_eq!(seen["sessionId"], tokens["sessionId"], "{who}");
    }
}

/// Polls `grpcurl list` over `tls` until it succeeds: how long after `since` it did, or what it
/// said last once `within` has passed.
async fn listed_within(
    server: &Server,
    tls: &GrpcurlTls,
    since: Instant,
    within: Duration,
) -> Result<Duration, String> {
    loop {
        let attempt = grpcurl_tls(server.grpc_addr, tls, &[], &["list"]).await;
        if attempt.status.success() {
            return Ok(since.elapsed());
        }
        if since.elapsed() >= within {
            return Err(text(&attempt));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_files_replaced_on_disk_reach_new_connections_within_10_s() {
    let files = ServerTls::new();
    let server = files.serve(false, &[]).await;
    let old = GrpcurlTls::trusting(&files.ca_file);
    let next_ca = Ca::new("the next CA");
    let new = GrpcurlTls::trusting(&next_ca.write(files.dir.path(), "next-ca.crt"));
    assert_lists_the_services(&server, &old).await;
    assert_refused(
        &grpcurl_tls(server.grpc_addr, &new, &[], &["list"]).await,
        "before",
    );

    // As a certificate manager does: written aside, then renamed over the served files.
    let staged = next_ca.localhost().write(files.dir.path(), "staged");
    std::fs::rename(&staged.key, &files.server.key).expect("key replaced");
    std::fs::rename(&staged.cert, &files.server.cert).expect("certificate replaced");
    let replaced = Instant::now();

    let served = listed_within(&server, &new, replaced, Duration::from_secs(10)).await;
    let after = served.unwrap_or_else(|said| {
        panic!(
            "the new certificate not served 10 s after the files were replaced: {said}\n{}",
            server.log()
        )
    });
    eprintln!("new certificate served after {after:?}");
    assert_lists_the_services(&server, &new).await;
    let stale = grpcurl_tls(server.grpc_addr, &old, &[], &["list"]).await;
    assert_refused(&stale, "trusting only the replaced certificate's CA");
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_fetches_the_jwks_over_https_without_a_client_certificate_under_mtls() {
    let files = ServerTls::new();
    let server = serve_with_alice(&files, true, &[]).await;
    let client = files.client(Identity::Uri("spiffe://test/ns/shop/sa/web"), "web");
    let tokens = login(
        &server,
        &GrpcurlTls::trusting(&files.ca_file).presenting(&client),
    )
    .await;
    let token = tokens["accessToken"].as_str().expect("an access token");

    let verified = pyjwt_verify_over_https(server.http_addr, &files.ca_file, token).await;

    let verified = json_of(&verified);
    assert_eq!(verified["header"]["typ"], "at+jwt");
    assert_eq!(verified["claims"]["sid"], tokens["sessionId"]);
    let other = Ca::new("another CA").write(files.dir.path(), "other-ca.crt");
    let untrusted = pyjwt_verify_over_https(server.http_addr, &other, token).await;
    let said = text(&untrusted);
    assert_eq!(untrusted.status.code(), Some(1), "{said}");
    assert!(said.contains("CERTIFICATE_VERIFY_FAILED"), "{said}");
    // The HTTP port speaks only HTTPS: a plaintext request gets no JWKS.
    let plaintext = send(server.http_addr, "/.well-known/jwks.json", &[]).await;
    if let Ok(response) = plaintext {
        assert_ne!(response.status, 200, "JWKS in plaintext: {}", response.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_checks_with_latchkey_over_mtls_as_a_listed_caller_only() {
    let mut files = ServerTls::new();
    // Envoy asks for the name `latchkey` (SNI) and checks it, as deployed.
    files.server = files
        .ca
        .server(&["latchkey", "localhost", "127.0.0.1"])
        .write(files.dir.path(), "server");
    let callers = [("LATCHKEY_SERVICE_CALLERS", "spiffe://test/ns/edge/*")];
    let server = serve_with_alice(&files, true, &callers).await;
    let listed = files.client(Identity::Uri("spiffe://test/ns/edge/sa/envoy"), "envoy");
    let mtls = GrpcurlTls::trusting(&files.ca_file).presenting(&listed);
    let tokens = login(&server, &mtls).await;
    let bearer = format!(
        "Bearer {}",
        tokens["accessToken"].as_str().expect("a token")
    );
    let (upstream, hits) = spawn_upstream().await;
    let tls = EnvoyTls {
        ca: &files.ca_file,
        client: &listed,
    };
    let envoy = Envoy::start_mtls(server.grpc_addr, upstream, &tls).await;

    let through = send(envoy.ingress, "/orders/42", &[("authorization", &bearer)]).await;
    let through = through.expect("envoy answers");
    assert_eq!(through.status, 200, "{}", through.body);
    let seen: Value = serde_json::from_str(&through.body).expect("the upstream's echo");
    assert_eq!(seen["x-latchkey-session"], json!([tokens["sessionId"]]));
    let refused = send(envoy.ingress, "/orders/42", &[])
        .await
        .expect("envoy answers");
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // An Envoy whose identity is not listed is refused its Check: it fails closed.
    let unlisted = files.client(Identity::Uri("spiffe://test/ns/shop/sa/envoy"), "unlisted");
    let tls = EnvoyTls {
        ca: &files.ca_file,
        client: &unlisted,
    };
    let stranger = Envoy::start_mtls(server.grpc_addr, upstream, &tls).await;
    let denied = send(
        stranger.ingress,
        "/orders/42",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(denied.expect("envoy answers").status, 403);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "an unchecked request went upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcio_over_mtls_logs_in_and_reads_caller_not_allowed() {
    let files = ServerTls::new();
    let callers = [(
        "LATCHKEY_SERVICE_CALLERS",
        "spiffe://test/ns/payments/sa/api",
    )];
    let server = serve_with_alice(&files, true, &callers).await;
    let listed = files.client(Identity::Uri("spiffe://test/ns/payments/sa/api"), "api");
    let unlisted = files.client(Identity::Uri("spiffe://test/ns/shop/sa/web"), "web");
    let run = async |client: &PairFiles| {
        let output = grpcio_over_tls(
            server.grpc_addr,
            &files.ca_file,
            client,
            "alice",
            "correct horse",
        );
        json_of(&output.await)
    };

    let seen = run(&listed).await;
    assert_eq!(seen["login"]["ok"]["token_type"], "Bearer", "{seen}");
    assert_eq!(seen["introspect"]["ok"]["active"], true, "{seen}");
    assert_eq!(
        seen["introspect"]["ok"]["session_id"],
        seen["login"]["ok"]["session_id"]
    );

    let seen = run(&unlisted).await;
    assert_eq!(seen["login"]["ok"]["token_type"], "Bearer", "{seen}");
    assert_eq!(
        seen["introspect"],
        json!({"code": "PERMISSION_DENIED", "reason": "CALLER_NOT_ALLOWED", "domain": "latchkey"})
    );
}
