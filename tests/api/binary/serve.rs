//! `latchkey serve` and `latchkey migrate` as an operator runs them: signals, a fresh machine, and
//! the health and metrics of a server that counts only its own calls (its own process, its own
//! metrics recorder).

use std::{collections::BTreeMap, time::Duration};

use latchkey::grpc::pb;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{
    app::master_key,
    client::{http_get, lazy_channel},
    process::{Server, latchkey_in, run},
};

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]).await;
    let ready = server.wait_log("ready", Duration::from_secs(30)).await;
    assert!(ready, "the server announces it is ready");
    assert!(dir.path().join("latchkey.db").exists() && dir.path().join("master.key").exists());
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn migrate_on_a_fresh_machine_creates_the_data_directory_and_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new").join("latchkey-data");
    let within = Duration::from_secs(30);
    let mut migrate = latchkey_in(&data);
    migrate.arg("migrate");
    let out = run(migrate, "", within).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("latchkey.db").exists());
    let mut list = latchkey_in(&data);
    list.args(["keys", "list"]);
    let keys = run(list, "", within).await.unwrap();
    assert!(
        keys.status.success() && keys.stdout.is_empty(),
        "no key until serve or keys rotate"
    );
}

#[tokio::test]
async fn commands_other_than_serve_and_migrate_refuse_to_create_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("latchkey-data");
    for args in [&["keys", "list"][..], &["user", "disable", "alice"]] {
        let mut command = latchkey_in(&data);
        command.args(args);
        let out = run(command, "", Duration::from_secs(30)).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains("no data directory at") && stderr.contains("latchkey migrate"),
            "{args:?}: {stderr}"
        );
        assert!(!data.exists(), "{args:?} created the data directory");
    }
}

#[tokio::test]
async fn commands_other_than_serve_and_migrate_refuse_to_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("elsewhere").join("latchkey.db");
    let mut command = latchkey_in(&dir.path().join("latchkey-data"));
    command
        .env("LATCHKEY_MASTER_KEY", master_key())
        .env(
            "LATCHKEY_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .args(["keys", "list"]);
    let out = run(command, "", Duration::from_secs(30)).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "keys list succeeded");
    assert!(
        stderr.contains("no SQLite database at") && stderr.contains("latchkey migrate"),
        "{stderr}"
    );
    assert!(
        !db.exists() && !db.parent().unwrap().exists(),
        "keys list created the database"
    );
}

/// The samples of a Prometheus text exposition: series (name and labels, as written) → value.
fn samples(exposition: &str) -> BTreeMap<&str, f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(series, value)| (series, value.parse().expect("a number")))
        .collect()
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    server.ready().await;
    let mut health = HealthClient::new(lazy_channel(server.grpc_addr));
    for service in ["", "latchkey.v1.AuthService"] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let status = health.check(request).await.unwrap().into_inner();
        assert_eq!(status.status(), ServingStatus::Serving, "{service:?}");
    }
    assert_eq!(http_get(server.http_addr, "/healthz").await.0, 200);
    assert_eq!(http_get(server.http_addr, "/readyz").await.0, 200);
    server.add_user("alice", "correct horse").await;
    let login = |password: &str| pb::LoginRequest {
        username: "alice".into(),
        password: password.into(),
        ..Default::default()
    };
    server.client().login(login("correct horse")).await.unwrap();
    let _ = server.client().login(login("wrong")).await;
    let (status, metrics) = http_get(server.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"latchkey_grpc_requests_total{method="/latchkey.v1.AuthService/Login",code="0"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("latchkey_grpc_request_duration_seconds_bucket"));
    assert!(metrics.contains("latchkey_login_failures_total"));
    // Exactly this server's calls: one login in, one refused (UNAUTHENTICATED, code 16).
    let login = r#"method="/latchkey.v1.AuthService/Login""#;
    let expected = [
        (
            format!("latchkey_grpc_requests_total{{{login},code=\"0\"}}"),
            1.0,
        ),
        (
            format!("latchkey_grpc_requests_total{{{login},code=\"16\"}}"),
            1.0,
        ),
        (
            format!("latchkey_grpc_request_duration_seconds_count{{{login}}}"),
            2.0,
        ),
        ("latchkey_login_failures_total".to_owned(), 1.0),
    ];
    let seen = samples(&metrics);
    for (series, count) in expected {
        assert_eq!(
            seen.get(series.as_str()),
            Some(&count),
            "{series} in\n{metrics}"
        );
    }
}

/// The store pings counted so far by the server at `addr`, once it has counted any.
async fn pings(addr: std::net::SocketAddr) -> Option<f64> {
    let (_, metrics) = http_get(addr, "/metrics").await;
    samples(&metrics).get("latchkey_store_pings_total").copied()
}

#[tokio::test]
async fn readiness_probes_at_any_rate_do_not_reach_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    server.ready().await;
    // The health check pings every second (LATCHKEY_HEALTH_CHECK_INTERVAL): wait for its first.
    let mut before = None;
    for _ in 0..100 {
        before = pings(server.http_addr).await;
        if before.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = before.expect("the health check pings the store");
    let started = std::time::Instant::now();
    for _ in 0..200 {
        assert_eq!(http_get(server.http_addr, "/readyz").await.0, 200);
    }
    let elapsed = started.elapsed();
    let during = pings(server.http_addr).await.unwrap() - before;
    // The health check's own, one a second, and nothing for the 200 probes.
    let health_checks = elapsed.as_secs_f64().ceil() + 1.0;
    assert!(
        during <= health_checks,
        "{during} pings during 200 probes in {elapsed:?}"
    );
}
