//! `spawn_app()`: the real server, built exactly as `latchkey serve` builds it, on port 0 with a
//! fresh data directory, a fresh database and a clock the test controls.
//!
//! The backend is SQLite, or PostgreSQL when `LATCHKEY_TEST_BACKEND=postgres`: then every test gets
//! its own database on the server at `LATCHKEY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), and a missing server fails the test loudly.

use std::{net::SocketAddr, sync::Arc};

use latchkey::{
    app::App,
    config::{Config, ConfigArgs},
    domain::types::{Password, Scope, Username},
    grpc::pb::{self, auth_service_client::AuthServiceClient},
    service::{Clock, ManualClock, Service, SystemClock},
};
use tempfile::TempDir;
use tonic::{Request, transport::Channel};

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub client: AuthServiceClient<Channel>,
    pub clock: Arc<ManualClock>,
    pub service: Arc<Service>,
    pub data_dir: TempDir,
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for tests: port 0 everywhere, the given data directory, cheap enough argon2 to keep
/// the suite quick (the OWASP default is tested on its own).
pub fn test_args(dir: &TempDir) -> ConfigArgs {
    ConfigArgs {
        data_dir: Some(dir.path().display().to_string()),
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        password_memory_kib: Some(1024),
        password_iterations: Some(1),
        ..Default::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut ConfigArgs)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("temp dir"), tweak).await
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty PostgreSQL database; its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed at {admin} (set LATCHKEY_TEST_POSTGRES_URL, or run .ci/run): {e}")
    });
    let name = format!("latchkey_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// Whether the behavioural suite runs on PostgreSQL this time.
pub fn on_postgres() -> bool {
    match std::env::var("LATCHKEY_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("LATCHKEY_TEST_BACKEND={other:?}: expected sqlite or postgres"),
    }
}

/// Starts a server on an existing data directory (to test restarts).
pub async fn spawn_app_in(data_dir: TempDir, tweak: impl FnOnce(&mut ConfigArgs)) -> TestApp {
    let mut args = test_args(&data_dir);
    if on_postgres() {
        args.database_url = Some(fresh_postgres_database().await.into());
    }
    tweak(&mut args);
    let config = Config::resolve(args).expect("test config");
    let database_url = config.database_url.expose().clone();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = App::build(&config, clock.clone())
        .await
        .expect("app builds");
    let (grpc_addr, http_addr, cell) = (app.grpc_addr, app.http_addr, app.service_cell());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let service = tokio::time::timeout(std::time::Duration::from_secs(30), cell.wait())
        .await
        .expect("the server reaches its store");
    let client = AuthServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .expect("client connects");
    TestApp {
        grpc_addr,
        http_addr,
        client,
        clock,
        service,
        data_dir,
        database_url,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server gracefully and starts it again on the same data directory and database.
    pub async fn restart(self) -> TestApp {
        let url = self.database_url.clone();
        let dir = self.stop().await;
        spawn_app_in(dir, |a| a.database_url = Some(url.into())).await
    }

    /// Stops the server gracefully and hands back its data directory.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
        self.data_dir
    }

    pub async fn add_user(&self, name: &str, password: &str, scopes: &[&str]) -> String {
        let scopes = scopes.iter().map(|s| Scope::parse(s.to_string()).unwrap());
        self.service
            .add_user(&username(name), password_of(password), scopes.collect())
            .await
            .expect("user added")
    }

    pub async fn login(&self, name: &str, password: &str) -> pb::TokenResponse {
        self.try_login(name, password)
            .await
            .expect("login succeeds")
    }

    pub async fn try_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<pb::TokenResponse, tonic::Status> {
        let request = pb::LoginRequest {
            username: name.into(),
            password: password.into(),
            device: "test-device".into(),
            ..Default::default()
        };
        self.client
            .clone()
            .login(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<pb::TokenResponse, tonic::Status> {
        let request = pb::RefreshRequest {
            refresh_token: refresh_token.into(),
        };
        self.client
            .clone()
            .refresh(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn introspect(&self, token: &str) -> pb::IntrospectResponse {
        let request = pb::IntrospectRequest {
            token: token.into(),
            token_type_hint: String::new(),
        };
        self.client
            .clone()
            .introspect(request)
            .await
            .expect("introspect answers")
            .into_inner()
    }

    pub async fn revoke(&self, token: &str) -> Result<(), tonic::Status> {
        let request = pb::RevokeRequest {
            token: token.into(),
            token_type_hint: String::new(),
        };
        self.client.clone().revoke(request).await.map(|_| ())
    }

    /// A user `alice` with password `correct horse`, logged in.
    pub async fn alice(&self) -> pb::TokenResponse {
        self.add_user("alice", "correct horse", &["read", "write"])
            .await;
        self.login("alice", "correct horse").await
    }
}

pub fn username(name: &str) -> Username {
    Username::parse(name).expect("a valid username")
}

pub fn password_of(password: &str) -> Password {
    Password::parse(password.into()).expect("a valid password")
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

/// The `ErrorInfo` reason of a failed call.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_else(|| format!("<no ErrorInfo: {status:?}>"))
}

/// A plain HTTP/1.1 GET: status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("HTTP port answers");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("response read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}
