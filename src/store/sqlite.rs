//! The embedded default: one SQLite file in WAL mode. Writers serialise on SQLite's lock (a busy
//! timeout waits for it), so several processes may share the file: the CLI beside a running server,
//! or two servers on one machine. `synchronous = FULL`: an acknowledged write survives power loss.

use std::{str::FromStr, time::Duration};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::{
    StoreError,
    sql::{migrator, sql_store},
};

pub struct SqliteStore {
    pool: SqlitePool,
}

fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        // SQLITE_BUSY / SQLITE_LOCKED (and their extended codes) past the busy timeout.
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("5" | "6" | "261" | "517")) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // A fresh machine has no data directory yet: `serve` and `migrate` create it.
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Other(format!("creating {}: {e}", dir.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(classify)?;
        migrator(include_str!("../../migrations/sqlite/0001_init.sql"))
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        Ok(Self { pool })
    }
}

sql_store!(SqliteStore, sqlx::Sqlite, SqliteRow);
