//! [`SqlStore<DB>`], the store over one sqlx driver, and the steps its methods share: a user
//! lookup, and the writes made inside a caller's transaction (a session, a refresh token, a feed
//! event, an audit row), which commit with it. The `Store` impl itself is in `store_impl.rs`;
//! [`Backend`] holds the little that differs between drivers.

use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type,
};

use super::{
    SessionRecord, Signals, StoreResult, UserRecord, listen, queries as q,
    rows::{UserRow, revocation_columns},
};
use crate::domain::{
    UnixMs,
    revocation::{Reason, Revocation, RevocationTarget},
    types::TokenHash,
};

/// What differs between the drivers, as far as the shared code goes.
pub trait Backend: Database {
    /// How many rows a statement changed (each driver has its own result type).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// The statement that announces committed revocations to other processes
    /// (`queries::NOTIFY_REVOCATIONS`), where the database has such a thing.
    const ANNOUNCE: Option<&'static str> = None;

    /// Listens for those announcements (see `listen.rs`) but the ones made by `origin`, where the
    /// database has them.
    fn listen(_pool: &Pool<Self>, _origin: &str) -> Option<Signals> {
        None
    }
}

/// A store over one pool of one driver (`Sqlite` or `Postgres`).
pub struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
    /// Names this process in its announcements of revocations, so that its own are not signalled
    /// back to it (it has applied them already).
    pub(super) origin: String,
}

impl<DB: Database> SqlStore<DB> {
    /// Wraps a pool whose database is already migrated.
    pub(super) fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            origin: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// The bounds are those of the `Store` impl in `store_impl.rs` (see there why they are written
/// twice).
impl<DB> SqlStore<DB>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    for<'a> &'a str: ColumnIndex<DB::Row> + Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB>,
    for<'a> String: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> Option<i64>: Encode<'a, DB> + Decode<'a, DB>,
    for<'a> bool: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> Vec<u8>: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
{
    /// The user found by `sql` (by name or by id).
    pub(super) async fn user(
        &self,
        sql: &'static str,
        key: &str,
    ) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(UserRecord::from))
    }

    pub(super) async fn insert_session(
        tx: &mut Transaction<'_, DB>,
        s: &SessionRecord,
    ) -> StoreResult<()> {
        sqlx::query(q::INSERT_SESSION)
            .bind(&s.id)
            .bind(&s.user_id)
            .bind(&s.client_id)
            .bind(&s.device)
            .bind(&s.ip)
            .bind(&s.scope)
            .bind(s.created_at)
            .bind(s.last_used_at)
            .bind(s.idle_expires_at)
            .bind(s.absolute_expires_at)
            .bind(s.generation)
            .bind(&s.sealed_token)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub(super) async fn insert_token(
        tx: &mut Transaction<'_, DB>,
        hash: &TokenHash,
        session_id: &str,
        generation: i64,
        issued_at: UnixMs,
    ) -> StoreResult<()> {
        sqlx::query(q::INSERT_TOKEN)
            .bind(&hash.0)
            .bind(session_id)
            .bind(generation)
            .bind(issued_at)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Appends a feed event. Taking the next number locks the counter row until the caller
    /// commits, so numbers are handed out in commit order.
    pub(super) async fn append_event(
        tx: &mut Transaction<'_, DB>,
        target: RevocationTarget,
        now: UnixMs,
        expires_at: UnixMs,
    ) -> StoreResult<Revocation> {
        let seq: i64 = sqlx::query_scalar(q::NEXT_SEQ).fetch_one(&mut **tx).await?;
        let (kind, id, not_before) = revocation_columns(&target);
        sqlx::query(q::INSERT_REVOCATION)
            .bind(seq)
            .bind(kind)
            .bind(id)
            .bind(not_before)
            .bind(expires_at)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(Revocation {
            seq,
            target,
            expires_at,
        })
    }

    /// Announces, at commit, that revocations up to `seq` were written (where the backend can).
    pub(super) async fn announce(&self, tx: &mut Transaction<'_, DB>, seq: i64) -> StoreResult<()> {
        if let Some(sql) = DB::ANNOUNCE {
            sqlx::query(sql)
                .bind(listen::CHANNEL)
                .bind(listen::payload(&self.origin, seq))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn audit(
        tx: &mut Transaction<'_, DB>,
        now: UnixMs,
        reason: Reason,
        user_id: &str,
        session_id: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(q::INSERT_AUDIT)
            .bind(now)
            .bind(reason.as_str())
            .bind(user_id)
            .bind(session_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Every migration, in order, from `migrations/<backend>/NNNN_<name>.sql`, embedded in the binary:
/// one list for both backends, whose files therefore keep matching names.
macro_rules! migrations {
    ($backend:literal) => {
        $crate::store::sql::migrator(&[
            (
                1,
                "init",
                include_str!(concat!("../../migrations/", $backend, "/0001_init.sql")),
            ),
            (
                2,
                "sealed_token_erasure",
                include_str!(concat!(
                    "../../migrations/",
                    $backend,
                    "/0002_sealed_token_erasure.sql"
                )),
            ),
        ])
    };
}
pub(super) use migrations;

/// The runtime `Migrator` of `migrations` (version, name, SQL), rather than the `migrate!` macro,
/// which would compile the drivers twice.
pub(super) fn migrator(
    migrations: &[(i64, &'static str, &'static str)],
) -> sqlx::migrate::Migrator {
    use sqlx::{
        SqlSafeStr,
        migrate::{Migration, MigrationType, Migrator},
    };
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    std::borrow::Cow::Borrowed(name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}
