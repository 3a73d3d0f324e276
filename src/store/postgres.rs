//! PostgreSQL, for fleets of stateless replicas sharing one database. Every replica runs the same
//! statements as SQLite (see `sql.rs`); atomicity comes from row locks: rotation is a conditional
//! UPDATE on the session's generation, and revocation numbers come from one counter row.

use std::{str::FromStr, time::Duration};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::{
    StoreError,
    sql::{migrator, sql_store},
};

pub struct PgStore {
    pool: PgPool,
}

fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        // Class 08 (connection exception), 53 (insufficient resources), 57P (operator intervention:
        // shutdown, admin shutdown, cannot connect now).
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| {
                c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")
            }) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("bad PostgreSQL URL: {e}")))?
            .application_name("latchkey")
            // No call waits on a stuck statement or lock for longer than this.
            .options([
                ("statement_timeout", "5s"),
                // A replica frozen inside a transaction must not hold rows (the revocation counter)
                // for long.
                ("idle_in_transaction_session_timeout", "10s"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // Fail fast when the database is gone: callers get STORE_UNAVAILABLE within seconds.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await
            .map_err(classify)?;
        // Replicas starting together must not race to create the schema: the migrator takes an
        // advisory lock while it runs.
        migrator(include_str!("../../migrations/postgres/0001_init.sql"))
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        Ok(Self { pool })
    }
}

sql_store!(PgStore, sqlx::Postgres, PgRow);
