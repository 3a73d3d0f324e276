//! [`SqlStore<DB>`], the store over one sqlx driver, and the steps its methods share: a user
//! lookup, the values of a session's and a refresh token's rows, the writes made inside a caller's
//! transaction (a rotation, feed events), which commit with it; the account events written that
//! way are in `events.rs`, a login's session in `open_session.rs`, the batches of rotations in
//! `batch.rs`.
//! The `Store` impl itself is in `store_impl.rs`; [`Backend`] holds the little that differs
//! between drivers. Over 300 lines: the shared steps stay beside the bounds they need.

use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type,
    query::Query,
};

use super::{
    NewSession, Rotation, SessionRecord, Signals, StoreResult, UserRecord,
    batch::RotationBatches,
    connections::Connections,
    listen,
    login_writes::LoginWrites,
    queries as q,
    rows::{UserRow, revocation_columns, session_revocations},
};
use crate::domain::{
    UnixMs,
    revocation::{Revocation, RevocationTarget},
    types::TokenHash,
};

/// What differs between the drivers, as far as the shared code goes.
pub trait Backend: Database {
    /// A session event for each id of a JSON array (see `queries.rs`).
    const INSERT_SESSION_EVENTS: &'static str;

    /// The call that opens a login's session in one round trip (`postgres_open_session.rs`),
    /// announcing its revocations as made by `origin`, where the database can run it.
    fn open_session_call(_new: &NewSession<'_>, _origin: &str) -> Option<StoreResult<Bound<Self>>> {
        None
    }

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

/// A statement with its values bound (sqlx's arguments own what they are given).
pub(super) type Bound<DB> = Query<'static, DB, <DB as Database>::Arguments>;

/// Sessions a transaction has just revoked, for their feed events.
pub(super) struct Revoked<'a> {
    pub ids: &'a [String],
    pub now: UnixMs,
    /// When their feed events may be forgotten.
    pub expires_at: UnixMs,
}

/// A store over one driver (`Sqlite` or `Postgres`): reads and writes through [`Connections`].
pub struct SqlStore<DB: Database> {
    /// Every read: on SQLite a few held connections, on PostgreSQL the pool.
    pub(super) readers: Connections<DB>,
    /// Every write: on SQLite one connection, on which the process's writers take turns in order
    /// (rather than in SQLite's busy handler, whose sleeps grow to 100 ms); on PostgreSQL the pool.
    pub(super) writer: Connections<DB>,
    /// Names this process in its announcements of revocations, so that its own are not signalled
    /// back to it (it has applied them already).
    pub(super) origin: String,
    /// Where rotations go to be committed together (see `batch.rs`).
    pub(super) rotations: RotationBatches,
    /// Where a login's writes go (SQLite, see `login_writes.rs`); `None`: the writer, the session
    /// in one call (`Backend::open_session_call`).
    pub(super) login: Option<Box<dyn LoginWrites>>,
}

impl<DB: Database> SqlStore<DB> {
    /// Wraps the readers and the writer of a database already migrated.
    pub(super) fn new(
        readers: Connections<DB>,
        writer: Connections<DB>,
        rotations: RotationBatches,
        login: Option<Box<dyn LoginWrites>>,
    ) -> Self {
        Self {
            readers,
            writer,
            origin: uuid::Uuid::new_v4().simple().to_string(),
            rotations,
            login,
        }
    }
}

/// The bounds are those of the `Store` impl in `store_impl.rs` (see there why they are written
/// again).
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
            .fetch_optional(&mut *self.readers.acquire().await?)
            .await?;
        Ok(row.map(UserRecord::from))
    }

    /// `INSERT_SESSION`'s values, bound after `query`'s.
    pub(super) fn session_values(query: Bound<DB>, s: &SessionRecord) -> Bound<DB> {
        query
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
    }

    /// A rotation inside a caller's transaction: the compare-and-swap on the session's generation,
    /// then the new token's row. `false`, having written nothing, when the generation has moved.
    pub(super) async fn rotate_in(tx: &mut Transaction<'_, DB>, r: &Rotation) -> StoreResult<bool> {
        let rotated = Self::rotation(r).execute(&mut **tx).await?;
        if DB::rows_affected(&rotated) != 1 {
            return Ok(false);
        }
        let generation = r.expected_generation + 1;
        let token = Self::token_values(
            sqlx::query(q::INSERT_TOKEN),
            &r.token_hash,
            &r.session_id,
            generation,
            r.now,
        );
        token.execute(&mut **tx).await?;
        if let Some(event) = &r.event {
            Self::record_event(tx, event, r.now).await?;
        }
        Ok(true)
    }

    /// A rotation's compare-and-swap (`queries::ROTATE`), its six parameters bound.
    fn rotation(r: &Rotation) -> Bound<DB> {
        sqlx::query(q::ROTATE)
            .bind(r.now)
            .bind(r.now)
            .bind(r.idle_expires_at)
            .bind(&r.sealed_token)
            .bind(&r.session_id)
            .bind(r.expected_generation)
    }

    /// `INSERT_TOKEN`'s values, bound after `query`'s.
    pub(super) fn token_values(
        query: Bound<DB>,
        hash: &TokenHash,
        session_id: &str,
        generation: i64,
        issued_at: UnixMs,
    ) -> Bound<DB> {
        query
            .bind(&hash.0)
            .bind(session_id)
            .bind(generation)
            .bind(issued_at)
    }

    /// Takes the next `count` numbers of a counter (`TAKE_SEQS`: the revocation feed's,
    /// `TAKE_EVENT_SEQS`: the account events'); returns the first. The counter row stays locked
    /// until the caller commits, so numbers are handed out in commit order.
    pub(super) async fn take_seqs(
        tx: &mut Transaction<'_, DB>,
        counter: &'static str,
        count: usize,
    ) -> StoreResult<i64> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let last: i64 = sqlx::query_scalar(counter)
            .bind(count)
            .fetch_one(&mut **tx)
            .await?;
        Ok(last - count + 1)
    }

    /// Appends a feed event.
    pub(super) async fn append_event(
        tx: &mut Transaction<'_, DB>,
        target: RevocationTarget,
        now: UnixMs,
        expires_at: UnixMs,
    ) -> StoreResult<Revocation> {
        let seq = Self::take_seqs(tx, q::TAKE_SEQS, 1).await?;
        Self::insert_event(tx, seq, &target, now, expires_at).await?;
        Ok(Revocation {
            seq,
            target,
            expires_at,
        })
    }

    /// Writes one feed event under a number already taken.
    async fn insert_event(
        tx: &mut Transaction<'_, DB>,
        seq: i64,
        target: &RevocationTarget,
        now: UnixMs,
        expires_at: UnixMs,
    ) -> StoreResult<()> {
        let (kind, id, not_before) = revocation_columns(target);
        sqlx::query(q::INSERT_REVOCATION)
            .bind(seq)
            .bind(kind)
            .bind(id)
            .bind(not_before)
            .bind(expires_at)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Writes the feed events of sessions just revoked, then the event of `then`
    /// (a user's cutoff), all numbered in one run: a bounded number of statements however many
    /// sessions there are.
    pub(super) async fn record_revoked(
        &self,
        tx: &mut Transaction<'_, DB>,
        revoked: &Revoked<'_>,
        then: Option<RevocationTarget>,
    ) -> StoreResult<Vec<Revocation>> {
        let count = revoked.ids.len() + usize::from(then.is_some());
        if count == 0 {
            return Ok(Vec::new());
        }
        let first = Self::take_seqs(tx, q::TAKE_SEQS, count).await?;
        let mut events = Self::session_events(tx, revoked, first).await?;
        if let Some(target) = then {
            let seq = first + i64::try_from(revoked.ids.len()).unwrap_or(i64::MAX);
            Self::insert_event(tx, seq, &target, revoked.now, revoked.expires_at).await?;
            events.push(Revocation {
                seq,
                target,
                expires_at: revoked.expires_at,
            });
        }
        if let Some(last) = events.last() {
            self.announce(tx, last.seq).await?;
        }
        Ok(events)
    }

    /// The feed events of sessions just revoked, numbered from `first_seq`: one statement whatever
    /// their number.
    async fn session_events(
        tx: &mut Transaction<'_, DB>,
        revoked: &Revoked<'_>,
        first_seq: i64,
    ) -> StoreResult<Vec<Revocation>> {
        if revoked.ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids =
            serde_json::to_string(revoked.ids).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(DB::INSERT_SESSION_EVENTS)
            .bind(first_seq)
            .bind(revoked.expires_at)
            .bind(revoked.now)
            .bind(ids.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(session_revocations(
            first_seq,
            revoked.ids,
            revoked.expires_at,
        ))
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
}
