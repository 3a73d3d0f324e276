//! Crash safety with real processes: `kill -9` a server while 16 clients refresh through it; each
//! client retries its last refresh token on another replica (PostgreSQL) or on the restarted
//! process (SQLite) inside the grace window, and no session is lost or left with two live tokens.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::Engine;
use futures_util::future::join_all;
use latchkey::{
    config::{Config, ConfigArgs},
    grpc::pb::{self, auth_service_client::AuthServiceClient},
    service::SystemClock,
};
use tokio::sync::Notify;
use tonic::{Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::*;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";
const CLIENTS: usize = 16;
/// Refreshes acknowledged overall before the server is killed.
const KILL_AFTER: usize = 100;

/// A `latchkey serve` process, killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

fn address(line: &str, key: &str) -> SocketAddr {
    let value = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"));
    value.parse().unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

impl Server {
    /// Starts `latchkey serve` on `data_dir` with the test settings plus `vars`, and waits until it
    /// announces its ports (not until it is ready: see [`Server::wait_health`]).
    pub async fn start(data_dir: &Path, vars: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("serve")
            .env_clear()
            .env("NO_COLOR", "1")
            .env("LATCHKEY_DATA_DIR", data_dir)
            .env("LATCHKEY_GRPC_ADDR", "127.0.0.1:0")
            .env("LATCHKEY_HTTP_ADDR", "127.0.0.1:0")
            .env("LATCHKEY_PASSWORD_MEMORY_KIB", "1024")
            .env("LATCHKEY_PASSWORD_ITERATIONS", "1")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("latchkey starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, mut serving) = tokio::sync::mpsc::unbounded_channel();
        let sink = log.clone();
        // Drains stderr until the process dies, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("latchkey listening") {
                    let _ = tx.send(line.clone());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let unbound: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let mut server = Server {
            child,
            grpc_addr: unbound,
            http_addr: unbound,
            log,
        };
        match tokio::time::timeout(Duration::from_secs(30), serving.recv()).await {
            Ok(Some(line)) => {
                server.grpc_addr = address(&line, "grpc=");
                server.http_addr = address(&line, "http=");
                server
            }
            Ok(None) => {
                let status = server.child.wait();
                panic!(
                    "latchkey exited ({status:?}) before serving:\n{}",
                    server.log()
                )
            }
            Err(_) => panic!("latchkey not serving after 30 s:\n{}", server.log()),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .unwrap()
            .connect_lazy()
    }

    pub fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel())
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (15 s at most) until health says SERVING.
    pub async fn ready(&self) -> Duration {
        self.wait_health(ServingStatus::Serving, Duration::from_secs(15))
            .await
    }

    /// Polls gRPC health until both services say `want`; how long that took.
    pub async fn wait_health(&self, want: ServingStatus, within: Duration) -> Duration {
        wait_health(self.grpc_addr, want, within)
            .await
            .unwrap_or_else(|seen| panic!("{seen}\n{}", self.log()))
    }
}

/// Polls gRPC health ("" and AuthService) at `addr` until both say `want`; how long that took, or
/// what was seen instead.
pub async fn wait_health(
    addr: SocketAddr,
    want: ServingStatus,
    within: Duration,
) -> Result<Duration, String> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap();
    let mut health = HealthClient::new(channel.connect_lazy());
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < within {
        seen.clear();
        for service in ["", "latchkey.v1.AuthService"] {
            let request = HealthCheckRequest {
                service: service.into(),
            };
            let answer = tokio::time::timeout(Duration::from_secs(1), health.check(request)).await;
            seen.push(match answer {
                Ok(Ok(response)) => Ok(response.into_inner().status()),
                Ok(Err(status)) => Err(status.code()),
                Err(_) => Err(tonic::Code::DeadlineExceeded),
            });
        }
        if seen.iter().all(|s| *s == Ok(want)) {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("health not {want:?} within {within:?}: {seen:?}"))
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Base64 of 32 random bytes.
pub fn master_key() -> String {
    let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Creates [`USER`] directly in the store these settings name.
pub async fn add_user(args: ConfigArgs) {
    let config = Config::resolve(args).expect("config");
    // As `latchkey migrate` would: a fresh data directory gets its master key.
    config.data_dir.bootstrap().expect("data directory");
    let service = latchkey::app::open_service(&config, Arc::new(SystemClock))
        .await
        .expect("store opens");
    service
        .add_user(
            &crate::helpers::username(USER),
            crate::helpers::password_of(PASSWORD),
            Vec::new(),
        )
        .await
        .expect("user added");
}

pub async fn refresh(
    client: &AuthServiceClient<Channel>,
    refresh_token: &str,
) -> Result<pb::TokenResponse, Status> {
    let request = pb::RefreshRequest {
        refresh_token: refresh_token.into(),
    };
    Ok(client.clone().refresh(request).await?.into_inner())
}

/// Refreshes until the server goes away; every refresh token held, and how the last call ended.
async fn churn(
    client: AuthServiceClient<Channel>,
    mut held: Vec<String>,
    refreshed: Arc<AtomicUsize>,
    enough: Arc<Notify>,
) -> (Vec<String>, Status) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match refresh(&client, held.last().unwrap()).await {
            Ok(pair) => held.push(pair.refresh_token),
            Err(status) => return (held, status),
        }
        if refreshed.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
            enough.notify_one();
        }
        assert!(Instant::now() < deadline, "the server was never killed");
    }
}

/// The scenario: 16 sessions refreshing through `victim`, which is killed mid-stream; then each
/// client retries its last token on `survivor()` and refreshes once more.
async fn kill_mid_stream_then_retry(mut victim: Server, survivor: impl AsyncFnOnce() -> Server) {
    let client = victim.client();
    let mut logins = Vec::new();
    for _ in 0..CLIENTS {
        let request = pb::LoginRequest {
            username: USER.into(),
            password: PASSWORD.into(),
            ..Default::default()
        };
        logins.push(client.clone().login(request).await.unwrap().into_inner());
    }
    let (refreshed, enough) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
    let churns = logins.iter().map(|login| {
        let held = vec![login.refresh_token.clone()];
        churn(client.clone(), held, refreshed.clone(), enough.clone())
    });
    let kill = async {
        let waited = tokio::time::timeout(Duration::from_secs(20), enough.notified()).await;
        waited.expect("100 refreshes within 20 s");
        victim.kill();
        Instant::now()
    };
    let (ended, killed_at) = tokio::join!(join_all(churns), kill);
    let count = refreshed.load(Ordering::SeqCst);
    eprintln!("killed after {count} acknowledged refreshes");
    for (_, status) in &ended {
        // The server died: a transport failure, never an answer such as REFRESH_TOKEN_REUSED.
        assert!(reason(status).starts_with("<no ErrorInfo"), "{status:?}");
    }

    let survivor = survivor().await;
    survivor.ready().await;
    let b = survivor.client();
    let mut lost = 0; // rotations the victim committed but never answered (introspecting is harmless)
    for (held, _) in &ended {
        lost += usize::from(!introspect(&b, held.last().unwrap()).await.active);
    }
    eprintln!("{lost} of {CLIENTS} answers were lost with the victim");
    let retried = join_all(ended.into_iter().map(|(mut held, _)| {
        let b = b.clone();
        async move {
            let last = held.last().unwrap().clone();
            let since = killed_at.elapsed();
            let retry = refresh(&b, &last)
                .await
                .unwrap_or_else(|s| panic!("retry {since:?} after the kill: {} {s:?}", reason(&s)));
            held.push(retry.refresh_token);
            let again = refresh(&b, held.last().unwrap()).await;
            held.push(again.expect("a further refresh").refresh_token);
            held
        }
    }))
    .await;
    let since = killed_at.elapsed();
    eprintln!("retried on the survivor {since:?} after the kill");

    for (held, login) in retried.iter().zip(&logins) {
        let (last, earlier) = held.split_last().unwrap();
        let info = introspect(&b, last).await;
        assert!(info.active, "the last token of {}", login.session_id);
        assert_eq!(info.session_id, login.session_id);
        for token in earlier {
            let info = introspect(&b, token).await;
            assert!(!info.active, "two live tokens in {}", login.session_id);
        }
    }
    drop(survivor);
}

async fn introspect(client: &AuthServiceClient<Channel>, token: &str) -> pb::IntrospectResponse {
    let request = pb::IntrospectRequest {
        token: token.into(),
        ..Default::default()
    };
    let response = client.clone().introspect(request).await;
    response.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_refresh_loses_no_session_on_postgres() {
    let url = fresh_postgres_database().await;
    let key = master_key();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut args = test_args(&dirs[0]);
    (args.database_url, args.master_key) = (Some(url.clone().into()), Some(key.clone().into()));
    add_user(args).await;
    let vars = [
        ("LATCHKEY_DATABASE_URL", url.as_str()),
        ("LATCHKEY_MASTER_KEY", key.as_str()),
    ];
    let a = Server::start(dirs[0].path(), &vars).await;
    let b = Server::start(dirs[1].path(), &vars).await;
    for replica in [&a, &b] {
        replica.ready().await;
    }
    kill_mid_stream_then_retry(a, async move || b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_killed_mid_refresh_and_restarted_loses_no_session_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    // The store and the generated master key, in the data directory both processes use.
    add_user(test_args(&dir)).await;
    let first = Server::start(dir.path(), &[]).await;
    first.ready().await;
    kill_mid_stream_then_retry(first, async || Server::start(dir.path(), &[]).await).await;
}
