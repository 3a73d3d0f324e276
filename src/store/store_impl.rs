//! `impl Store for SqlStore<DB>`: every method of the [`Store`] trait, written once for both
//! drivers (long, as a trait impl cannot be split across files). Atomicity comes from the
//! statements and row locks: rotation is a conditional UPDATE on the session's generation (on
//! PostgreSQL one statement with its token insert), a login's session waits on the user's row
//! (`open_session.rs`), and every revocation writes its changes, feed events and account events in
//! one transaction, announced at commit where the backend can (see `listen.rs`).
//!
//! The `where` clause says what the SQL needs of a driver (an executor, the column types it binds
//! and reads); `sql.rs`, `events.rs`, `accounts.rs` and `open_session.rs` repeat it, as Rust does
//! not carry such bounds through a helper trait.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Connection, Decode, Encode, Executor, IntoArguments, Type};

use super::{
    Attempt, FoundRefresh, KeyRecord, NewSession, Purge, Rotation, SessionRecord, Signals, Store,
    StoreResult, UserRecord, UserRevocation,
    events::revoked_detail,
    queries as q,
    rows::{RefreshRow, RevocationRow, ThrottleAndUserRow, ThrottleRow},
    sql::{Backend, Revoked, SqlStore},
};
use crate::domain::{
    UnixMs,
    event::{NewEvent, Origin},
    revocation::{Reason, Revocation, RevocationTarget},
    scope, throttle,
    types::TokenHash,
};

#[async_trait]
impl<DB> Store for SqlStore<DB>
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
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(q::PING)
            .execute(&mut *self.readers.acquire().await?)
            .await?;
        Ok(())
    }

    async fn create_user(&self, u: &UserRecord, event: &NewEvent) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(q::CREATE_USER)
            .bind(&u.id)
            .bind(&u.username)
            .bind(u.password_hash.expose())
            .bind(scope::join(&u.scopes))
            .bind(u.disabled)
            .bind(u.not_before)
            .bind(u.created_at)
            .execute(&mut *tx)
            .await?;
        Self::record_event(&mut tx, event, u.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.user(q::USER_BY_NAME, username).await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.user(q::USER_BY_ID, id).await
    }

    async fn throttle(&self, username: &str) -> StoreResult<Option<throttle::Record>> {
        let row: Option<ThrottleRow> = sqlx::query_as(q::THROTTLE)
            .bind(username)
            .fetch_optional(&mut *self.readers.acquire().await?)
            .await?;
        Ok(row.map(throttle::Record::from))
    }

    async fn swap_throttle(
        &self,
        username: &str,
        expected: Option<&throttle::Record>,
        r: &throttle::Record,
    ) -> StoreResult<bool> {
        if let Some(login) = &self.login {
            return login.swap_throttle(username, expected, r).await;
        }
        let sql = if expected.is_some() {
            q::SWAP_THROTTLE
        } else {
            q::INSERT_THROTTLE
        };
        let mut query = sqlx::query(sql)
            .bind(i64::from(r.failures))
            .bind(r.window_started_at)
            .bind(r.locked_until)
            .bind(i64::from(r.lockouts))
            .bind(username);
        if let Some(old) = expected {
            query = query
                .bind(i64::from(old.failures))
                .bind(old.window_started_at)
                .bind(old.locked_until)
                .bind(i64::from(old.lockouts));
        }
        Ok(DB::rows_affected(&query.execute(&mut *self.writer.acquire().await?).await?) == 1)
    }

    async fn clear_throttle(&self, username: &str) -> StoreResult<()> {
        let clear = sqlx::query(q::CLEAR_THROTTLE).bind(username);
        clear.execute(&mut *self.writer.acquire().await?).await?;
        Ok(())
    }

    async fn count_attempt(
        &self,
        username: &str,
        now: UnixMs,
        policy: &throttle::Policy,
    ) -> StoreResult<Attempt> {
        if let Some(login) = &self.login {
            return login.count_attempt(username, now, policy).await;
        }
        let row: ThrottleAndUserRow = sqlx::query_as(q::POSTGRES_THROTTLE_AND_USER)
            .bind(username)
            .fetch_one(&mut *self.readers.acquire().await?)
            .await?;
        let (record, user) = row.split();
        let counted = match throttle::count(record.as_ref(), now, policy) {
            Ok(counted) => counted,
            Err(until) => return Ok(Attempt::Locked(until)),
        };
        if !self
            .swap_throttle(username, record.as_ref(), &counted)
            .await?
        {
            return Ok(Attempt::Raced);
        }
        Ok(Attempt::Counted {
            record: counted,
            user,
        })
    }

    async fn create_session(&self, new: &NewSession<'_>) -> StoreResult<Option<Vec<Revocation>>> {
        self.open_session(new).await
    }

    async fn find_refresh(&self, hash: &TokenHash) -> StoreResult<Option<FoundRefresh>> {
        let row: Option<RefreshRow> = sqlx::query_as(q::FIND_REFRESH)
            .bind(&hash.0)
            .fetch_optional(&mut *self.readers.acquire().await?)
            .await?;
        Ok(row.map(FoundRefresh::from))
    }

    async fn rotate(&self, r: &Rotation) -> StoreResult<bool> {
        if let Some(made) = self.rotations.rotate(r.clone()).await? {
            return Ok(made);
        }
        // Left by its batch to be made on its own (see `postgres_batch.rs`).
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        if !Self::rotate_in(&mut tx, r).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_session(
        &self,
        session_id: &str,
        now: UnixMs,
        expires_at: UnixMs,
        reason: Reason,
        origin: &Origin,
    ) -> StoreResult<Option<Revocation>> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let user_id: Option<String> = sqlx::query_scalar(q::REVOKE_SESSION)
            .bind(now)
            .bind(session_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let target = RevocationTarget::Session(session_id.to_owned());
        let event = Self::append_event(&mut tx, target, now, expires_at).await?;
        let record = NewEvent::new(&user_id, reason.into(), origin.clone());
        Self::record_event(&mut tx, &record, now).await?;
        self.announce(&mut tx, event.seq).await?;
        tx.commit().await?;
        Ok(Some(event))
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        now: UnixMs,
        expires_at: UnixMs,
    ) -> StoreResult<Revocation> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let target = RevocationTarget::Jti(jti.to_owned());
        let event = Self::append_event(&mut tx, target, now, expires_at).await?;
        self.announce(&mut tx, event.seq).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn revoke_user(&self, r: &UserRevocation) -> StoreResult<Vec<Revocation>> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        // First, so that it holds the user's row: logins wait for it (see open_session.rs).
        // With a session kept, no cutoff (0 never raises it).
        let not_before = r.keep_session.as_ref().map_or(r.not_before, |_| 0);
        sqlx::query(q::CHANGE_USER)
            .bind(not_before)
            .bind(r.new_password_hash.as_deref())
            .bind(r.disable)
            .bind(&r.user_id)
            .execute(&mut *tx)
            .await?;
        let revoked: Vec<String> = sqlx::query_scalar(q::REVOKE_USER_SESSIONS)
            .bind(r.now)
            .bind(&r.user_id)
            .bind(r.keep_session.as_deref().unwrap_or_default())
            .fetch_all(&mut *tx)
            .await?;
        let sessions = Revoked {
            ids: &revoked,
            now: r.now,
            expires_at: r.expires_at,
        };
        let cutoff = RevocationTarget::User {
            user_id: r.user_id.clone(),
            not_before: r.not_before,
        };
        let cutoff = r.keep_session.is_none().then_some(cutoff);
        let events = self.record_revoked(&mut tx, &sessions, cutoff).await?;
        let record = r
            .event
            .clone()
            .with_detail(revoked_detail(&r.event.detail, revoked.len()));
        Self::record_event(&mut tx, &record, r.now).await?;
        if r.delete {
            for sql in [
                q::DELETE_USER_TOKENS,
                q::DELETE_USER_SESSIONS,
                q::DELETE_USER,
            ] {
                sqlx::query(sql).bind(&r.user_id).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(events)
    }

    async fn live_sessions(&self, user_id: &str, now: UnixMs) -> StoreResult<Vec<SessionRecord>> {
        Ok(sqlx::query_as(q::LIVE_SESSIONS)
            .bind(user_id)
            .bind(now)
            .fetch_all(&mut *self.readers.acquire().await?)
            .await?)
    }

    async fn count_live_sessions(&self, now: UnixMs) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(q::COUNT_LIVE_SESSIONS)
            .bind(now)
            .fetch_one(&mut *self.readers.acquire().await?)
            .await?)
    }

    async fn revocations_after(&self, after: i64, limit: i64) -> StoreResult<Vec<Revocation>> {
        let rows: Vec<RevocationRow> = sqlx::query_as(q::REVOCATIONS_AFTER)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *self.readers.acquire().await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(Revocation::try_from)
            .collect::<Result<_, _>>()?)
    }

    fn revocation_signals(&self) -> Option<Signals> {
        DB::listen(self.readers.pool(), &self.origin)
    }

    async fn purge(&self, p: &Purge) -> StoreResult<u64> {
        let erased = sqlx::query(q::ERASE_SEALED_TOKENS)
            .bind(p.sealed_rotated_before)
            .bind(p.erase_batch)
            .bind(Vec::<u8>::new())
            .execute(&mut *self.writer.acquire().await?)
            .await?;
        let mut changed = DB::rows_affected(&erased);
        for (sql, before) in [
            (q::PURGE_TOKENS_OF_EXPIRED_SESSIONS, p.sessions_ended_before),
            (q::PURGE_TOKENS_OF_REVOKED_SESSIONS, p.sessions_ended_before),
            (q::PURGE_EXPIRED_SESSIONS, p.sessions_ended_before),
            (q::PURGE_REVOKED_SESSIONS, p.sessions_ended_before),
            (q::PURGE_REVOCATIONS, p.events_expired_before),
            (q::PURGE_THROTTLE, p.throttle_idle_before),
            (q::PURGE_EVENTS, p.account_events_before),
        ] {
            let done = sqlx::query(sql)
                .bind(before)
                .bind(p.batch)
                .execute(&mut *self.writer.acquire().await?)
                .await?;
            changed += DB::rows_affected(&done);
        }
        Ok(changed)
    }

    async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
        sqlx::query(q::INSERT_KEY)
            .bind(&k.kid)
            .bind(&k.alg)
            .bind(&k.sealed_private)
            .bind(k.created_at)
            .execute(&mut *self.writer.acquire().await?)
            .await?;
        Ok(())
    }

    async fn keys(&self) -> StoreResult<Vec<KeyRecord>> {
        Ok(sqlx::query_as(q::KEYS)
            .fetch_all(&mut *self.readers.acquire().await?)
            .await?)
    }
}
