//! `spawn_app()`: the real server, built exactly as `latchkey serve` builds it, in the test process,
//! on port 0 with a fresh data directory, a fresh database and a clock the test controls. Also the
//! settings every test server runs with, and the one place tests create users through the service.
//!
//! The backend is SQLite, or PostgreSQL when `LATCHKEY_TEST_BACKEND=postgres`: then every test gets
//! its own database (see [`super::postgres`]), and a missing server fails the test loudly.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use base64::Engine;
use latchkey::{
    app::App,
    config::{Config, ConfigArgs},
    domain::types::{Password, Scope, Username},
    grpc::pb::{self, auth_service_client::AuthServiceClient},
    service::{Admin, Clock, ManualClock, Service, SystemClock, UserRef},
    store::{self, Store},
};
use tempfile::TempDir;
use tonic::transport::Channel;

use super::{log, postgres};

/// Argon2 cheap enough to keep the suite quick (the OWASP default is tested on its own); child
/// processes get the same through their environment.
pub const PASSWORD_MEMORY_KIB: u32 = 1024;
pub const PASSWORD_ITERATIONS: u32 = 1;

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

/// Settings for tests: port 0 everywhere, the given data directory, cheap argon2.
pub fn test_args(dir: &Path) -> ConfigArgs {
    ConfigArgs {
        data_dir: Some(dir.display().to_string()),
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        password_memory_kib: Some(PASSWORD_MEMORY_KIB),
        password_iterations: Some(PASSWORD_ITERATIONS),
        ..Default::default()
    }
}

/// Points the settings at a database (shared by replicas, or kept across a restart) and, for a
/// fleet, at the master key its replicas share.
pub fn use_store(args: &mut ConfigArgs, database_url: &str, master_key: Option<&str>) {
    args.database_url = Some(database_url.to_owned().into());
    if let Some(key) = master_key {
        args.master_key = Some(key.to_owned().into());
    }
}

/// A fresh master key: base64 of 32 random bytes.
pub fn master_key() -> String {
    let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The settings resolved as `latchkey serve` resolves them.
pub fn resolve(args: ConfigArgs) -> Config {
    Config::resolve(args).expect("test config")
}

/// The server as `latchkey serve` builds it: ports bound, not yet running.
pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> App {
    log::init();
    App::build(config, clock).await.expect("app builds")
}

/// A username as the service takes it.
pub fn username(name: &str) -> Username {
    Username::parse(name).expect("a valid username")
}

/// Creates a user through the service; its id.
pub async fn create_user(service: &Service, name: &str, password: &str, scopes: &[&str]) -> String {
    let scopes = scopes
        .iter()
        .map(|s| Scope::parse(s.to_string()).expect("a valid scope"))
        .collect();
    let password = Password::parse(password.into()).expect("a valid password");
    service
        .create_user(&username(name), password, scopes, &Admin::command_line())
        .await
        .expect("user added")
        .user_id
}

/// Disables a user through the service, as an operator at the command line does.
pub async fn disable_user(service: &Service, name: &str) -> u32 {
    let user = UserRef::Name(username(name));
    service
        .set_disabled(&user, true, &Admin::command_line())
        .await
        .expect("disabled")
        .revoked_sessions
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut ConfigArgs)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("temp dir"), tweak).await
}

/// Starts a server on an existing data directory (to test restarts).
pub async fn spawn_app_in(data_dir: TempDir, tweak: impl FnOnce(&mut ConfigArgs)) -> TestApp {
    let mut args = test_args(data_dir.path());
    if postgres::on_postgres() {
        use_store(&mut args, &postgres::fresh_postgres_database().await, None);
    }
    tweak(&mut args);
    let config = resolve(args);
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = build(&config, clock.clone()).await;
    let (grpc_addr, http_addr, cell) = (app.grpc_addr, app.http_addr, app.service_cell());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let service = tokio::time::timeout(Duration::from_secs(30), cell.wait())
        .await
        .expect("the server reaches its store");
    // A TLS server's tests make their own clients (they hold the CA); this one would not connect.
    let client = if config.tls.is_some() {
        AuthServiceClient::new(super::client::lazy_channel(grpc_addr))
    } else {
        AuthServiceClient::connect(format!("http://{grpc_addr}"))
            .await
            .expect("client connects")
    };
    TestApp {
        grpc_addr,
        http_addr,
        client,
        clock,
        service,
        data_dir,
        database_url: config.database_url.expose().clone(),
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server gracefully and starts it again on the same data directory and database.
    pub async fn restart(self) -> TestApp {
        let url = self.database_url.clone();
        let dir = self.stop().await;
        spawn_app_in(dir, |a| use_store(a, &url, None)).await
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

    /// Creates a user; its id.
    pub async fn add_user(&self, name: &str, password: &str, scopes: &[&str]) -> String {
        create_user(&self.service, name, password, scopes).await
    }

    /// The server's store, opened a second time beside it: for tests that look at what was written.
    pub async fn store(&self) -> Arc<dyn Store> {
        store::connect(&self.database_url, store::Mode::Existing)
            .await
            .expect("the store opens")
    }

    /// A user `alice` with password `correct horse`, logged in.
    pub async fn alice(&self) -> pb::TokenResponse {
        self.add_user("alice", "correct horse", &["read", "write"])
            .await;
        self.login("alice", "correct horse").await
    }
}

/// A server hashing one password at a time at the OWASP cost, and a burst of 40 logins of 40
/// names (one attempt each: the throttle stays out of it), which overflows its bounded queue of 8:
/// the server, the names and their answers.
pub async fn overloaded_burst() -> (
    TestApp,
    Vec<String>,
    Vec<Result<pb::TokenResponse, tonic::Status>>,
) {
    let app = spawn_app_with(|a| {
        a.hash_concurrency = Some(1);
        a.password_memory_kib = None;
        a.password_iterations = None;
    })
    .await;
    let names: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    let results =
        futures_util::future::join_all(names.iter().map(|n| app.try_login(n, "guess"))).await;
    (app, names, results)
}
