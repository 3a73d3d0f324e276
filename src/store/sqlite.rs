//! The embedded default: one SQLite file in WAL mode. SQLite has one writer at a time: within the
//! process writers take turns in order on one connection (a login's on a second, in the same
//! turns); between processes they wait on SQLite's lock (a busy timeout), so several may share the
//! file: the CLI beside a running server, or two servers on one machine. `synchronous = FULL`: an
//! acknowledged write survives power loss. Rotations that arrive together share one commit (see
//! `batch.rs`); a login's writes are made through rusqlite, each in one hand-off
//! (`login_writes.rs`).

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    Sqlite,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
        SqliteSynchronous,
    },
};

use super::{
    Mode, StoreError, StoreResult,
    connections::{Connections, WAIT},
    login_writes::SqliteLoginWrites,
    migrate::migrator,
    queries as q,
    sql::{Backend, SqlStore},
    sqlite_batch,
};

/// Connections for reads, each with a thread of its own.
pub(super) const READERS: usize = 8;
/// How long a write waits for another process's (SQLite's busy handler).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn connect(url: &str, mode: Mode) -> StoreResult<SqlStore<Sqlite>> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::open("bad SQLite URL", e))?
        .create_if_missing(mode == Mode::Create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let file = options.get_filename();
    if mode == Mode::Existing && !file.exists() {
        return Err(StoreError::Missing(file.to_owned()));
    }
    // A database outside the data directory may need its folder: `serve` and `migrate` create it.
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::open(format!("creating {}", dir.display()), e))?;
    }
    let created = !file.exists();
    let file = file.to_owned();
    // The writer first: it creates the file. Writers queue for its one connection, in order, for
    // at most the time a writer would have waited on SQLite's lock (see `connections.rs`); with
    // connections of their own they would contend in SQLite's busy handler, which sleeps in steps
    // of up to 100 ms, so one long write (a purge round) could stall the rotations behind it for
    // that long. It leaves checkpoints to the task of `batch.rs`.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(WAIT)
        .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
        .await?;
    // A login's writes open the database again, by the file SQLite names (`login_writes.rs`): one
    // in memory has none, and would not be shared with them.
    let path: String = sqlx::query_scalar(q::SQLITE_DATABASE_FILE)
        .fetch_one(&writer)
        .await?;
    if path.is_empty() {
        return Err(StoreError::open(
            "an in-memory SQLite database cannot be latchkey's store",
            "give a file: sqlite:///path/to/latchkey.db",
        ));
    }
    if created {
        restrict(&file)?;
    }
    migrator(MIGRATIONS)
        .run(&writer)
        .await
        .map_err(|e| StoreError::open("migration failed", e))?;
    let writer = Connections::hold(writer, 1);
    // A connection to a local file cannot go stale as a network one can: the readers are held too,
    // with no ping as each goes back (see `connections.rs`).
    let readers = SqlitePoolOptions::new()
        .max_connections(READERS as u32)
        .acquire_timeout(WAIT)
        .connect_with(options)
        .await?;
    let readers = Connections::hold(readers, READERS);
    let rotations = sqlite_batch::start(writer.clone(), readers.clone());
    let login = SqliteLoginWrites::open(Path::new(&path), writer.clone(), BUSY_TIMEOUT)?;
    Ok(SqlStore::new(
        readers,
        writer,
        rotations,
        Some(Box::new(login)),
    ))
}

/// Makes a database file just created, and its WAL and shared-memory files, private to their owner
/// before the schema or any data is written: SQLite creates them as the umask allows, and creates
/// the latter two again later with the database file's own mode.
fn restrict(file: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        let path = Path::new(&path);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::open(format!("restricting {}", path.display()), e))?;
        }
    }
    Ok(())
}

/// `migrations/sqlite/`, in order.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        "sealed_token_erasure",
        include_str!("../../migrations/sqlite/0002_sealed_token_erasure.sql"),
    ),
    (
        "session_cap",
        include_str!("../../migrations/sqlite/0003_session_cap.sql"),
    ),
    (
        "account_events",
        include_str!("../../migrations/sqlite/0004_account_events.sql"),
    ),
];

impl Backend for Sqlite {
    const INSERT_SESSION_EVENTS: &'static str = q::SQLITE_INSERT_SESSION_EVENTS;

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}
