//! Real third-party peers against the real server: grpcurl (reflection, JSON transcoding, health),
//! PyJWT (local verification against the HTTP JWKS) and Google's grpcio. They are installed by
//! `bash .ci/run` (tests/peers/requirements.txt); a missing one fails the test, never skips it.

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

/// How to install the peers, for the message of a test that cannot find one.
pub const INSTALL_PEERS: &str = "run `bash .ci/run`, or `python3 -m venv .venv-peers && \
     .venv-peers/bin/pip install -r tests/peers/requirements.txt` and run the tests with \
     PATH=$PWD/.venv-peers/bin:$PATH LATCHKEY_PEERS_PYTHON=$PWD/.venv-peers/bin/python";

/// Exit status of the Python scripts in tests/peers/ when one of their modules is missing.
const MISSING_MODULE: i32 = 3;

const PEERS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");

/// The Python that has the peers installed: `$LATCHKEY_PEERS_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("LATCHKEY_PEERS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a peer to completion (at most 60 s), feeding it `stdin`.
async fn run_peer(program: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the peer `{program}` ({e}): {INSTALL_PEERS}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("peer reads its input");
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the peer `{program}` did not finish within 60 s"))
        .expect("peer output");
    if output.status.code() == Some(MISSING_MODULE) {
        panic!(
            "the peer `{program}` lacks a module ({}): {INSTALL_PEERS}",
            text(&output)
        );
    }
    output
}

/// `token` with one character of its signature changed, well inside it, where every bit counts.
pub fn tamper_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT has three parts");
    let mut signature = signature.to_owned().into_bytes();
    signature[10] = if signature[10] == b'A' { b'B' } else { b'A' };
    format!(
        "{signed}.{}",
        String::from_utf8(signature).expect("base64url")
    )
}

/// Standard output and standard error together.
fn text(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    format!("{stdout}{}", String::from_utf8_lossy(&output.stderr))
}

/// `grpcurl -plaintext FLAGS ADDR REST`.
async fn grpcurl(app: &TestApp, flags: &[&str], rest: &[&str]) -> Output {
    let addr = app.grpc_addr.to_string();
    let mut args = vec!["-plaintext", "-max-time", "30"];
    args.extend_from_slice(flags);
    args.push(&addr);
    args.extend_from_slice(rest);
    run_peer("grpcurl", &args, "").await
}

/// Verifies `token` with PyJWT against the server's JWKS (tests/peers/verify_jwt.py).
async fn pyjwt_verify(app: &TestApp, token: &str) -> Output {
    let script = format!("{PEERS_DIR}/verify_jwt.py");
    run_peer(&python(), &[&script, &app.http_addr.to_string()], token).await
}

fn parse(output: &Output) -> Value {
    assert!(output.status.success(), "peer failed: {}", text(output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("peer printed no JSON ({e}): {}", text(output)))
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_and_describes_the_services_through_reflection() {
    let app = spawn_app().await;

    let list = grpcurl(&app, &[], &["list"]).await;
    assert!(
        list.status.success(),
        "grpcurl list failed: {}",
        text(&list)
    );
    let services = String::from_utf8_lossy(&list.stdout);
    let services: Vec<&str> = services.lines().collect();
    for expected in ["latchkey.v1.AuthService", "grpc.health.v1.Health"] {
        assert!(
            services.contains(&expected),
            "{expected} not listed: {services:?}"
        );
    }

    let describe = grpcurl(&app, &[], &["describe", "latchkey.v1.AuthService"]).await;
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
    let login = grpcurl(&app, &["-d", &body], &["latchkey.v1.AuthService/Login"]).await;
    let tokens = parse(&login);

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
    let login = grpcurl(&app, &["-d", &body], &["latchkey.v1.AuthService/Login"]).await;
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

    let overall = grpcurl(&app, &[], &["grpc.health.v1.Health/Check"]).await;
    assert_eq!(parse(&overall)["status"], "SERVING");

    let body = json!({"service": "latchkey.v1.AuthService"}).to_string();
    let auth = grpcurl(&app, &["-d", &body], &["grpc.health.v1.Health/Check"]).await;
    assert_eq!(parse(&auth)["status"], "SERVING");
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_verifies_an_access_token_against_the_jwks() {
    let app = spawn_app().await;
    let user_id = app
        .add_user("alice", "correct horse", &["read", "write"])
        .await;
    let tokens = app.login("alice", "correct horse").await;

    let verified = parse(&pyjwt_verify(&app, &tokens.access_token).await);

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

    let rejected = pyjwt_verify(&app, &tampered).await;

    assert_eq!(rejected.status.code(), Some(1), "{}", text(&rejected));
    let complaint = String::from_utf8_lossy(&rejected.stderr);
    assert!(complaint.contains("InvalidSignatureError"), "{complaint}");
    // The untouched token still verifies: the rejection is the tampering, not the setup.
    assert!(pyjwt_verify(&app, &token).await.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_verifies_es256_and_rs256_access_tokens() {
    for alg in ["ES256", "RS256"] {
        let app = spawn_app_with(|a| a.signing_alg = Some(alg.into())).await;
        let tokens = app.alice().await;

        let verified = parse(&pyjwt_verify(&app, &tokens.access_token).await);

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

    let seen = parse(&run_peer(&python(), &args, "").await);

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
