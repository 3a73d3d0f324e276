//! The embedded default: one SQLite file in WAL mode. Writers serialise on SQLite's lock (a busy
//! timeout waits for it), so several processes may share the file: the CLI beside a running server,
//! or two servers on one machine. `synchronous = FULL`: an acknowledged write survives power loss.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Sqlite,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
        SqliteSynchronous,
    },
};

use super::{
    Mode, StoreError, StoreResult, queries as q,
    sql::{Backend, SqlStore, migrator},
};

pub(super) async fn connect(url: &str, mode: Mode) -> StoreResult<SqlStore<Sqlite>> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::open("bad SQLite URL", e))?
        .create_if_missing(mode == Mode::Create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let file = options.get_filename();
    if mode == Mode::Existing && !file.exists() {
        return Err(StoreError::Missing(file.to_owned()));
    }
    // A database outside the data directory may need its folder: `serve` and `migrate` create it.
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::open(format!("creating {}", dir.display()), e))?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    migrator(MIGRATIONS)
        .run(&pool)
        .await
        .map_err(|e| StoreError::open("migration failed", e))?;
    Ok(SqlStore::new(pool))
}

/// `migrations/sqlite/`, in order.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        "session_cap",
        include_str!("../../migrations/sqlite/0002_session_cap.sql"),
    ),
];

impl Backend for Sqlite {
    const INSERT_SESSION_EVENTS: &'static str = q::SQLITE_INSERT_SESSION_EVENTS;
    const INSERT_AUDITS: &'static str = q::SQLITE_INSERT_AUDITS;

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}
