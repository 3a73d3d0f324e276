//! PostgreSQL, for fleets of stateless replicas sharing one database. Every replica runs the same
//! statements as SQLite (see `queries.rs`); what differs is how the pool is opened, and that
//! revocations are announced to the other replicas at commit (see `listen.rs`).

use std::{str::FromStr, time::Duration};

use sqlx::{
    Connection, Pool, Postgres,
    pool::PoolConnectionMetadata,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgQueryResult},
};

use super::{
    NewSession, Signals, StoreError, StoreResult,
    connections::Connections,
    listen,
    migrate::migrator,
    postgres_batch, postgres_open_session, queries as q,
    sql::{Backend, Bound, SqlStore},
};

pub(super) async fn connect(url: &str) -> StoreResult<SqlStore<Postgres>> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::open("bad PostgreSQL URL", e))?
        .application_name("latchkey")
        // No call waits on a stuck statement or lock for longer than this.
        .options([
            ("statement_timeout", "5s"),
            // A replica frozen inside a transaction must not hold rows (the revocation counter)
            // for long.
            ("idle_in_transaction_session_timeout", "10s"),
        ]);
    let pool = PgPoolOptions::new()
        // One of them is held by the change listener (see `listen.rs`).
        .max_connections(16)
        // sqlx would ping every connection it hands out, a round trip before each statement
        // (Refresh on PostgreSQL was about a fifth slower with it, see BENCHMARKS.md); only one
        // that sat idle is pinged, and replaced if the database went away meanwhile.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
        // Fail fast when the database is gone: callers get STORE_UNAVAILABLE within seconds.
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await?;
    // Replicas starting together must not race to create the schema: the migrator takes an
    // advisory lock while it runs.
    migrator(MIGRATIONS)
        .run(&pool)
        .await
        .map_err(|e| StoreError::open("migration failed", e))?;
    postgres_open_session::install(&pool).await?;
    // Reads and writes share the pool: PostgreSQL lets writers of different rows work at once.
    Ok(SqlStore::new(
        Connections::Pool(pool.clone()),
        Connections::Pool(pool.clone()),
        postgres_batch::start(Connections::Pool(pool)),
        None,
    ))
}

/// How long a pooled connection may sit idle and still be handed out without a ping. A restart
/// of PostgreSQL while the server idles costs no call; one within this time of a connection's last
/// use may fail one call on it (`STORE_UNAVAILABLE`, as a call in flight during the restart would),
/// after which sqlx drops that connection.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

async fn ping_if_idle(conn: &mut PgConnection, meta: PoolConnectionMetadata) -> sqlx::Result<bool> {
    if meta.idle_for >= PING_AFTER_IDLE {
        conn.ping().await?;
    }
    Ok(true)
}

/// `migrations/postgres/`, in order.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        "sealed_token_erasure",
        include_str!("../../migrations/postgres/0002_sealed_token_erasure.sql"),
    ),
    (
        "session_cap",
        include_str!("../../migrations/postgres/0003_session_cap.sql"),
    ),
    (
        "account_events",
        include_str!("../../migrations/postgres/0004_account_events.sql"),
    ),
];

impl Backend for Postgres {
    const INSERT_SESSION_EVENTS: &'static str = q::POSTGRES_INSERT_SESSION_EVENTS;

    fn open_session_call(new: &NewSession<'_>, origin: &str) -> Option<StoreResult<Bound<Self>>> {
        Some(postgres_open_session::call(new, origin))
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    const ANNOUNCE: Option<&'static str> = Some(q::NOTIFY_REVOCATIONS);

    fn listen(pool: &Pool<Self>, origin: &str) -> Option<Signals> {
        Some(listen::listen(pool.clone(), origin.to_owned()))
    }
}
