//! Running latchkey: restarts, key rotation, health, metrics, and the `latchkey` binary itself.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::*;

fn kid(token: &str) -> String {
    latchkey::crypto::jwt::key_id(token).unwrap()
}

#[tokio::test]
async fn a_restart_on_the_same_data_directory_keeps_sessions_and_keys() {
    let app = spawn_app().await;
    let pair = app.alice().await;
    let jwks_before = app.service.jwks_json().unwrap();
    let app = app.restart().await;
    assert_eq!(app.service.jwks_json().unwrap(), jwks_before);
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
    assert_eq!(kid(&new.access_token), new_kid);
    assert_ne!(kid(&old.access_token), new_kid);
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

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr)).unwrap();
    let mut health = HealthClient::new(channel.connect().await.unwrap());
    for service in ["", "latchkey.v1.AuthService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.status(), ServingStatus::Serving, "{service:?}");
    }
    assert_eq!(http_get(app.http_addr, "/healthz").await.0, 200);
    assert_eq!(http_get(app.http_addr, "/readyz").await.0, 200);
    app.alice().await;
    let _ = app.try_login("alice", "wrong").await;
    let (status, metrics) = http_get(app.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"latchkey_grpc_requests_total{method="/latchkey.v1.AuthService/Login",code="0"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("latchkey_grpc_request_duration_seconds_bucket"));
    assert!(metrics.contains("latchkey_login_failures_total"));
}

fn latchkey(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .env_clear()
        .env("LATCHKEY_DATA_DIR", dir)
        .env("LATCHKEY_PASSWORD_MEMORY_KIB", "1024")
        .env("LATCHKEY_PASSWORD_ITERATIONS", "1")
        .env("LATCHKEY_GRPC_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_HTTP_ADDR", "127.0.0.1:0");
    command
}

fn run(command: &mut Command, stdin: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_cli_manages_users_and_keys_beside_a_running_server() {
    let app = spawn_app().await;
    let dir = app.data_dir.path().to_owned();
    let latchkey = |dir: &std::path::Path| {
        let mut command = latchkey(dir);
        command.env("LATCHKEY_DATABASE_URL", &app.database_url);
        command
    };
    let id = run(
        latchkey(&dir).args([
            "user",
            "add",
            "carol",
            "--password-stdin",
            "--scope",
            "read",
        ]),
        "s3cret\n",
    );
    assert_eq!(id.trim().len(), 36);
    let pair = app.login("carol", "s3cret").await;
    assert_eq!(pair.scope, "read");

    run(
        latchkey(&dir).args(["user", "set-password", "carol", "--password-stdin"]),
        "n3w\n",
    );
    assert!(app.try_login("carol", "s3cret").await.is_err());
    app.login("carol", "n3w").await;
    // The CLI's revocation reaches the running server through the feed.
    let mut active = true;
    for _ in 0..100 {
        active = app.introspect(&pair.access_token).await.active;
        if !active {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!active, "revocation by the CLI reached the server");

    let kid = run(latchkey(&dir).args(["keys", "rotate"]), "");
    // Listing keys, even under another configured algorithm, never creates one.
    let before = run(latchkey(&dir).args(["keys", "list"]), "");
    run(
        latchkey(&dir)
            .env("LATCHKEY_SIGNING_ALG", "ES256")
            .args(["keys", "list"]),
        "",
    );
    assert_eq!(run(latchkey(&dir).args(["keys", "list"]), ""), before);
    let listed = run(latchkey(&dir).args(["keys", "list"]), "");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(kid.trim()) && l.ends_with("active")),
        "{listed}"
    );
    // The running server signs with the new key within 5 s, by itself.
    let mut signed_with = String::new();
    for _ in 0..50 {
        let fresh = app.login("carol", "n3w").await;
        signed_with = latchkey::crypto::jwt::key_id(&fresh.access_token).unwrap();
        if signed_with == kid.trim() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(signed_with, kid.trim());
}

/// Kills the child on drop, so a failing test leaves no server behind.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Reaper(
        latchkey(dir.path())
            .arg("serve")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("ready"));
    assert!(ready, "the server announces it is ready");
    assert!(dir.path().join("latchkey.db").exists() && dir.path().join("master.key").exists());
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn shutdown_ends_open_revocation_streams_instead_of_waiting_on_them() {
    use tokio_stream::StreamExt;
    let app = spawn_app().await;
    let request = latchkey::grpc::pb::WatchRevocationsRequest { after_seq: 0 };
    let mut stream = app
        .client
        .clone()
        .watch_revocations(request)
        .await
        .unwrap()
        .into_inner();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await;
    assert!(stopped.is_ok(), "the server stopped with a stream open");
    assert!(stream.next().await.is_none_or(|item| item.is_err()));
}

#[tokio::test]
async fn the_healthcheck_command_reports_a_serving_server_and_fails_otherwise() {
    let app = spawn_app().await;
    let check = |addr: String| {
        let dir = app.data_dir.path().to_owned();
        async move {
            let mut command = latchkey(&dir);
            command.env("LATCHKEY_GRPC_ADDR", addr).arg("healthcheck");
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
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
    let mut args = test_args(&dir);
    args.database_url = Some(url.into());
    args.master_key = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    let config = latchkey::config::Config::resolve(args).unwrap();
    let clock = std::sync::Arc::new(latchkey::service::SystemClock);
    let server = latchkey::app::App::build(&config, clock).await.unwrap();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        server.run(std::future::pending()),
    )
    .await;
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
    use tokio_stream::StreamExt;
    let app = spawn_app().await;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr)).unwrap();
    let mut health = HealthClient::new(channel.connect().await.unwrap());
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
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next())
        .await
        .expect("an update");
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(15), stopping).await;
    assert!(stopped.is_ok(), "the server stopped despite the open watch");
}

#[test]
fn migrate_on_a_fresh_machine_creates_the_data_directory_and_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new").join("latchkey-data");
    let out = latchkey(&data).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("latchkey.db").exists());
    let keys = latchkey(&data).args(["keys", "list"]).output().unwrap();
    assert!(
        keys.status.success() && keys.stdout.is_empty(),
        "no key until serve or keys rotate"
    );
}

#[test]
fn commands_other_than_serve_and_migrate_refuse_to_create_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("latchkey-data");
    for args in [&["keys", "list"][..], &["user", "disable", "alice"]] {
        let out = latchkey(&data).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains("no data directory at") && stderr.contains("latchkey migrate"),
            "{args:?}: {stderr}"
        );
        assert!(!data.exists(), "{args:?} created the data directory");
    }
}
