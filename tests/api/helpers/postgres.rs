//! PostgreSQL for the tests: a fresh database per test on the server at
//! `LATCHKEY_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped
//! by a later test process once its own has ended, and
//! throwaway clusters of a test's own (with the server binaries in `LATCHKEY_PG_BIN`) for tests that
//! stop and start the store. A missing server fails the test loudly, never skips it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;
use tokio::sync::OnceCell;

/// The PostgreSQL server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty PostgreSQL database; its URL. Its name says which machine and which process made
/// it, so that the first call in each process drops the databases that processes of this machine
/// now gone left behind: a test may stop and start servers on its database until it ends, so each
/// lives until the next run (or next test process) sweeps it, however its test ended.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    static SWEPT: OnceCell<()> = OnceCell::const_new();
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed at {admin} (set LATCHKEY_TEST_POSTGRES_URL, or run .ci/run): {e}")
    });
    let machine = this_machines_databases();
    SWEPT.get_or_init(|| sweep(&mut conn, &machine)).await;
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{machine}{}_{}", std::process::id(), &uuid[..16]);
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// What the names of the test databases made on this machine start with.
pub fn this_machines_databases() -> String {
    format!("latchkey_test_{:016x}_", fnv1a(&hostname()))
}

/// Drops the databases named `{machine}{pid}_…` whose process is gone (no `/proc/{pid}`). One that
/// cannot be dropped is reported, not panicked on: it is not the calling test's failure.
pub async fn sweep(conn: &mut sqlx::PgConnection, machine: &str) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(machine)
            .fetch_all(&mut *conn)
            .await
            .expect("list test databases");
    for name in names {
        let pid = name[machine.len()..].split('_').next().unwrap_or_default();
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&mut *conn)
            .await
        {
            eprintln!("test database {name}, left by a run that ended, was not dropped: {e}");
        }
    }
}

/// This machine's name (a container's own), as the kernel has it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| String::new(), |h| h.trim().to_owned())
}

/// FNV-1a, 64 bits: a name's fingerprint that stays the same from one build to the next.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether in-process servers run on PostgreSQL this time (`LATCHKEY_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    match std::env::var("LATCHKEY_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("LATCHKEY_TEST_BACKEND={other:?}: expected sqlite or postgres"),
    }
}

/// A PostgreSQL cluster in a temporary directory, trust auth, on a free port; stopped on drop.
pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    running: bool,
    /// Extra `-c` settings for the server, from the next start.
    settings: Vec<String>,
}

impl Cluster {
    pub fn init() -> Cluster {
        let bin = std::env::var_os("LATCHKEY_PG_BIN").map_or_else(
            || PathBuf::from("/usr/lib/postgresql/15/bin"),
            PathBuf::from,
        );
        assert!(
            bin.join("initdb").exists(),
            "PostgreSQL binaries are needed in {} (set LATCHKEY_PG_BIN)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status();
            assert!(chown.expect("chown runs").success(), "chown to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = Cluster {
            dir,
            bin,
            port,
            running: false,
            settings: Vec::new(),
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-sync", "-D", &data],
        );
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A PostgreSQL program, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        }
    }

    /// Runs a PostgreSQL program as the cluster's owner; panics with its output on failure.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output();
        let out = out.unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// From the next start, serves TLS with this certificate (PEM, with its chain) and key, and
    /// only TLS over TCP: `pg_hba.conf` then has only `hostssl` lines, so every connection that
    /// gets in is encrypted.
    pub fn require_tls(&mut self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::PermissionsExt;
        let data = self.dir.path().join("data");
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n";
        for (file, text, mode) in [
            ("server.crt", cert_pem, 0o644),
            ("server.key", key_pem, 0o600),
            ("pg_hba.conf", hba, 0o600),
        ] {
            let path = data.join(file);
            std::fs::write(&path, text).expect("cluster file written");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            if is_root() {
                // PostgreSQL refuses a key that is not its own.
                let chown = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&path)
                    .status();
                assert!(chown.expect("chown runs").success(), "chown {file}");
            }
        }
        self.settings.push("ssl=on".into());
    }

    pub fn start(&mut self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        for setting in &self.settings {
            options.push_str(&format!(" -c {setting}"));
        }
        let log = self.dir.path().join("postgres.log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "start", "-w", "-t", "60", "-D", &data, "-l", &log, "-o", &options,
            ],
        );
        self.running = true;
    }

    pub fn stop(&mut self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["stop", "-m", "fast", "-w", "-t", "60", "-D", &data],
        );
        self.running = false;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let args = ["stop", "-m", "immediate", "-w", "-D", &data];
            let _ = self
                .command("pg_ctl")
                .args(args)
                .current_dir(self.dir.path())
                .status();
        }
    }
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}
