//! Running latchkey: restarts, key rotation, shutdown, and the CLI beside a running server.

use std::{sync::Arc, time::Duration};

use latchkey::service::SystemClock;
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{
    app::{TestApp, build, resolve, spawn_app, test_args, use_store},
    client::{http_get, key_id, lazy_channel, next_revocation},
    process::{latchkey_in, run, run_latchkey},
};

#[tokio::test]
async fn a_restart_on_the_same_data_directory_keeps_sessions_and_keys() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    let jwks_before = app.jwks().await;
    let app = app.restart().await;
    assert_eq!(app.jwks().await, jwks_before);
    assert!(app.introspect(&pair.access_token).await.active);
    let next = app.refresh(&pair.refresh_token).await.unwrap();
    assert_eq!(next.session_id, pair.session_id);
}

#[tokio::test]
async fn after_key_rotation_new_tokens_use_the_new_key_and_old_ones_stay_valid() {
    let app = spawn_app().await;
    let old = app.alice().await;
    let new_kid = app.service.rotate_keys().await.unwrap();
    let new = app.login("alice", "correct horse").await;
    assert_eq!(key_id(&new.access_token), new_kid);
    assert_ne!(key_id(&old.access_token), new_kid);
    assert!(app.introspect(&old.access_token).await.active);
    let (_, jwks) = http_get(app.http_addr, "/.well-known/jwks.json").await;
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    // Once every token the old key signed has expired, it drops out.
    app.clock.advance(15 * 60_000 + 11_000);
    app.service.sync_keys().await.unwrap();
    let (_, jwks) = http_get(app.http_addr, "/.well-known/jwks.json").await;
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], new_kid.as_str());
}

/// `latchkey ARGS` beside `app`: its data directory and database.
async fn cli(app: &TestApp, args: &[&str], stdin: &str) -> String {
    let mut command = latchkey_in(app.data_dir.path());
    command
        .env("LATCHKEY_DATABASE_URL", &app.database_url)
        .args(args);
    run_latchkey(command, stdin).await
}

/// Polls `done` (every `step`, `tries` times at most) until it says true; whether it did.
async fn eventually(tries: usize, step: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..tries {
        if done().await {
            return true;
        }
        tokio::time::sleep(step).await;
    }
    false
}

#[tokio::test]
async fn the_cli_manages_users_and_keys_beside_a_running_server() {
    let app = spawn_app().await;
    let add = [
        "user",
        "add",
        "carol",
        "--password-stdin",
        "--scope",
        "read",
    ];
    let id = cli(&app, &add, "s3cret\n").await;
    assert_eq!(id.trim().len(), 36);
    let pair = app.login("carol", "s3cret").await;
    assert_eq!(pair.scope, "read");

    let set_password = ["user", "set-password", "carol", "--password-stdin"];
    cli(&app, &set_password, "n3w\n").await;
    assert!(app.try_login("carol", "s3cret").await.is_err());
    app.login("carol", "n3w").await;
    // The CLI's revocation reaches the running server through the feed.
    let inactive = async || !app.introspect(&pair.access_token).await.active;
    let revoked = eventually(100, Duration::from_millis(20), inactive).await;
    assert!(revoked, "revocation by the CLI reached the server");

    let kid = cli(&app, &["keys", "rotate"], "").await;
    // Listing keys, even under another configured algorithm, never creates one.
    let before = cli(&app, &["keys", "list"], "").await;
    let mut es256 = latchkey_in(app.data_dir.path());
    es256
        .env("LATCHKEY_DATABASE_URL", &app.database_url)
        .env("LATCHKEY_SIGNING_ALG", "ES256")
        .args(["keys", "list"]);
    run_latchkey(es256, "").await;
    assert_eq!(cli(&app, &["keys", "list"], "").await, before);
    let listed = cli(&app, &["keys", "list"], "").await;
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(kid.trim()) && l.ends_with("active")),
        "{listed}"
    );
    // The running server signs with the new key within 5 s, by itself.
    let mut signed_with = String::new();
    let signs_with_new = async || {
        signed_with = key_id(&app.login("carol", "n3w").await.access_token);
        signed_with == kid.trim()
    };
    eventually(50, Duration::from_millis(100), signs_with_new).await;
    assert_eq!(signed_with, kid.trim());
}

#[tokio::test]
async fn shutdown_ends_open_revocation_streams_instead_of_waiting_on_them() {
    let app = spawn_app().await;
    let request = latchkey::grpc::pb::WatchRevocationsRequest { after_seq: 0 };
    let mut stream = app
        .client
        .clone()
        .watch_revocations(request)
        .await
        .unwrap()
        .into_inner();
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.stop()).await;
    assert!(stopped.is_ok(), "the server stopped with a stream open");
    let last = next_revocation(&mut stream).await;
    assert!(last.is_none_or(|item| item.is_err()));
}

#[tokio::test]
async fn the_healthcheck_command_reports_a_serving_server_and_fails_otherwise() {
    let app = spawn_app().await;
    let check = async |addr: String| {
        let mut command = latchkey_in(app.data_dir.path());
        command.env("LATCHKEY_GRPC_ADDR", addr).arg("healthcheck");
        let output = run(command, "", Duration::from_secs(30)).await;
        output.expect("latchkey starts")
    };
    let up = check(app.grpc_addr.to_string()).await;
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&up.stdout).trim(), "SERVING");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(!check(closed.to_string()).await.status.success());
}

#[tokio::test]
async fn a_server_with_another_master_key_refuses_to_start_and_says_why() {
    let app = spawn_app().await;
    app.alice().await;
    let url = app.database_url.clone();
    let dir = app.stop().await;
    let mut args = test_args(dir.path());
    let other_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    use_store(&mut args, &url, Some(other_key));
    let server = build(&resolve(args), Arc::new(SystemClock)).await;
    let outcome =
        tokio::time::timeout(Duration::from_secs(10), server.run(std::future::pending())).await;
    let error = outcome
        .expect("it stops by itself")
        .expect_err("it refuses to run");
    assert!(
        format!("{error:#}").contains("wrong master key"),
        "{error:#}"
    );
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_and_ends_even_with_a_health_watch_open() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(lazy_channel(app.grpc_addr));
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    let stopping = tokio::spawn(app.stop());
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an update");
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    let stopped = tokio::time::timeout(Duration::from_secs(15), stopping).await;
    assert!(stopped.is_ok(), "the server stopped despite the open watch");
}
