//! Hot-path benchmark: `cargo bench --bench hot_paths`. Starts the real server in-process (SQLite in
//! a temp dir, OWASP argon2id) and drives it over gRPC on loopback, as clients do. Machines here are
//! noisy, so every figure is also printed as a ratio to a baseline measured in the same run:
//!
//! - gRPC calls against `grpc.health.v1.Health/Check`, the cheapest call the server answers (the
//!   floor of HTTP/2 + protobuf + tonic on this machine);
//! - Login against one argon2id hash at the same parameters, computed directly (the floor of any
//!   implementation that hashes passwords at OWASP's cost).
//!
//! The same calls are then measured over mTLS with a caller list (`tls`), against the same
//! plaintext baseline. Results and the command are recorded in BENCHMARKS.md.

#[path = "hot_paths/tls.rs"]
mod tls;

mod server;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use argon2::{Argon2, Params, password_hash::generate_salt};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, attribute_context::HttpRequest, attribute_context::Request,
    authorization_client::AuthorizationClient,
};
use futures_util::future::join_all;
use latchkey::{
    config::ConfigArgs,
    crypto::password::{self, Cost, Hasher},
    domain::types::{ClientId, Device, Password, Scope, Username},
    grpc::pb::{self, auth_service_client::AuthServiceClient},
    service::{Admin, LoginCommand},
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const CONCURRENCY: usize = 32;
const PASSWORD: &str = "correct horse battery staple";

struct Figure {
    name: &'static str,
    per_op: Duration,
    ops_per_sec: f64,
}

/// Calls made by one `measure`: a tenth of `n` to warm up, `n` in sequence, `n` in parallel.
fn calls(n: usize) -> usize {
    n / 10 + 2 * n
}

/// Mean time per call of `op` run `n` times one after another, then the throughput of `n` calls
/// with `CONCURRENCY` in flight. Each call gets its own number, from 0 to `calls(n)`.
async fn measure<F, Fut>(name: &'static str, n: usize, op: F) -> Figure
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let warm_up = n / 10;
    for i in 0..warm_up {
        op(i).await;
    }
    let started = Instant::now();
    for i in warm_up..warm_up + n {
        op(i).await;
    }
    let per_op = started.elapsed() / n as u32;
    let started = Instant::now();
    let parallel: Vec<usize> = (warm_up + n..calls(n)).collect();
    for chunk in parallel.chunks(CONCURRENCY) {
        join_all(chunk.iter().map(|&i| op(i))).await;
    }
    let ops_per_sec = n as f64 / started.elapsed().as_secs_f64();
    Figure {
        name,
        per_op,
        ops_per_sec,
    }
}

fn report(baseline: &Figure, figures: &[Figure]) {
    println!(
        "{:<34} {:>12} {:>9} {:>14} {:>9}",
        "operation",
        "µs/op (seq)",
        "× base",
        format!("ops/s ({CONCURRENCY} par)"),
        "× base"
    );
    for f in std::iter::once(baseline).chain(figures) {
        println!(
            "{:<34} {:>12.1} {:>9.2} {:>14.0} {:>9.2}",
            f.name,
            f.per_op.as_secs_f64() * 1e6,
            f.per_op.as_secs_f64() / baseline.per_op.as_secs_f64(),
            f.ops_per_sec,
            f.ops_per_sec / baseline.ops_per_sec,
        );
    }
}

fn check_request(token: &str) -> CheckRequest {
    let http = HttpRequest {
        headers: [("authorization".to_string(), format!("Bearer {token}"))].into(),
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(http),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let args = ConfigArgs {
        data_dir: Some(dir.path().display().to_string()),
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        // One user opens a session per Refresh measured: more than the default cap of 100.
        max_sessions_per_user: Some(100_000),
        ..Default::default()
    };
    let (addr, service) = server::start(args).await?;
    let read = Scope::parse("read".into())?;
    service
        .create_user(
            &username("bench"),
            password(),
            vec![read],
            &Admin::command_line(),
        )
        .await?;

    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let auth = AuthServiceClient::new(channel.clone());
    let health = HealthClient::new(channel.clone());
    let ext_authz = AuthorizationClient::new(channel);
    let login = || {
        let mut auth = auth.clone();
        async move {
            let request = pb::LoginRequest {
                username: "bench".into(),
                password: PASSWORD.into(),
                ..Default::default()
            };
            auth.login(request).await.expect("login").into_inner()
        }
    };
    let pair = login().await;

    let baseline = measure("health Check (baseline)", 4000, |_| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest::default())
                .await
                .expect("health");
        }
    })
    .await;
    let introspect = measure("Introspect (access token)", 4000, |_| {
        let (mut auth, token) = (auth.clone(), pair.access_token.clone());
        async move {
            let request = pb::IntrospectRequest {
                token,
                token_type_hint: String::new(),
            };
            assert!(
                auth.introspect(request)
                    .await
                    .expect("introspect")
                    .into_inner()
                    .active
            );
        }
    })
    .await;
    let check = measure("ext_authz Check (valid token)", 4000, |_| {
        let (mut ext_authz, token) = (ext_authz.clone(), pair.access_token.clone());
        async move {
            let response = ext_authz
                .check(check_request(&token))
                .await
                .expect("check")
                .into_inner();
            assert_eq!(
                response.status.map(|s| s.code),
                Some(0),
                "the request is allowed"
            );
        }
    })
    .await;
    // Each refresh spends a live token: one session per call, opened beforehand.
    let mut sessions = Vec::new();
    for _ in 0..calls(400) {
        sessions.push(service_login(&service).await);
    }
    let sessions = Arc::new(sessions);
    let refresh = measure("Refresh (rotation)", 400, |i| {
        let (mut auth, token) = (auth.clone(), sessions[i].clone());
        async move {
            auth.refresh(pb::RefreshRequest {
                refresh_token: token,
            })
            .await
            .expect("refresh");
        }
    })
    .await;
    let mut figures = vec![introspect, check, refresh];
    figures.extend(tls::figures(4000).await?);
    report(&baseline, &figures);

    println!();
    // Into one block of memory laid out as the server's hashing workers lay theirs out (allocated
    // once, on 2 MiB pages where the kernel grants them), so that the ratios below are the pool's
    // and the login's own costs, not an allocation per hash or a page size.
    let argon2 = {
        let mut blocks = password::blocks(Params::default().block_count());
        let mut out = [0u8; 32];
        let mut hash = || {
            Argon2::default()
                .hash_password_into_with_memory(
                    PASSWORD.as_bytes(),
                    &generate_salt(),
                    &mut out,
                    &mut *blocks,
                )
                .expect("hash");
        };
        hash();
        let started = Instant::now();
        for _ in 0..20 {
            hash();
        }
        started.elapsed() / 20
    };
    let pooled = {
        let hasher = Hasher::new(Cost::default(), 2)?;
        let phc = hasher.hash(password()).await?;
        let started = Instant::now();
        for _ in 0..20 {
            assert!(hasher.verify(password(), Some(phc.clone())).await?);
        }
        started.elapsed() / 20
    };
    let logins = {
        let started = Instant::now();
        for _ in 0..20 {
            login().await;
        }
        started.elapsed() / 20
    };
    println!(
        "{:<34} {:>12.1}",
        "argon2id hash, direct (baseline)",
        argon2.as_secs_f64() * 1e6
    );
    println!(
        "{:<34} {:>12.1} {:>9.2}",
        "argon2id verify on the bounded pool",
        pooled.as_secs_f64() * 1e6,
        pooled.as_secs_f64() / argon2.as_secs_f64()
    );
    // Unknown users must cost what wrong passwords cost: both check one hash.
    let failing = |name: &'static str| {
        let mut auth = auth.clone();
        async move {
            let started = Instant::now();
            for i in 0..8 {
                // A name per attempt keeps the throttle out of the measurement.
                let request = pb::LoginRequest {
                    username: format!("{name}{i}"),
                    password: "wrong".into(),
                    ..Default::default()
                };
                auth.login(request).await.expect_err("refused");
            }
            started.elapsed() / 8
        }
    };
    for i in 0..8 {
        service
            .create_user(
                &username(&format!("known{i}")),
                password(),
                vec![],
                &Admin::command_line(),
            )
            .await?;
    }
    let known = failing("known").await;
    let unknown = failing("unknown").await;
    println!(
        "{:<34} {:>12.1} {:>9.2}",
        "Login, wrong password",
        known.as_secs_f64() * 1e6,
        known.as_secs_f64() / argon2.as_secs_f64()
    );
    println!(
        "{:<34} {:>12.1} {:>9.2}   (× wrong password: {:.2})",
        "Login, unknown user",
        unknown.as_secs_f64() * 1e6,
        unknown.as_secs_f64() / argon2.as_secs_f64(),
        unknown.as_secs_f64() / known.as_secs_f64()
    );
    println!(
        "{:<34} {:>12.1} {:>9.2}",
        "Login",
        logins.as_secs_f64() * 1e6,
        logins.as_secs_f64() / argon2.as_secs_f64()
    );
    Ok(())
}

fn password() -> Password {
    Password::parse(PASSWORD.into()).expect("a valid password")
}

fn username(name: &str) -> Username {
    Username::parse(name).expect("a valid username")
}

/// A fresh session's refresh token, opened through the service directly (not part of any figure).
async fn service_login(service: &latchkey::service::Service) -> String {
    let command = LoginCommand {
        username: username("bench"),
        password: password(),
        client_id: ClientId::parse(String::new()).expect("the default client"),
        device: Device::parse(String::new()).expect("no device"),
        scopes: Vec::new(),
        ip: String::new(),
    };
    let pair = service.login(command).await.expect("login");
    pair.refresh_token.into_inner()
}
