//! A login's session, opened in one transaction once its password matched: the user's row locked
//! as the login found it (its own statement: what follows must see the sessions of logins that
//! held the lock before), the attempt counted against the name cleared, the least recently used
//! sessions beyond the cap revoked, the session and its first refresh token written, then the feed
//! and account events of it all. On PostgreSQL the four writes after the lock are one statement
//! (`queries::POSTGRES_OPEN_SESSION`); SQLite makes the same writes, statement by statement, in
//! `login_writes.rs`. The bounds are those of `sql.rs` (see `store_impl.rs` why they are written
//! again).

use sqlx::{ColumnIndex, Connection, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{
    NewSession, StoreError, StoreResult, queries as q,
    sql::{Backend, Revoked, SqlStore},
};
use crate::domain::{event::EventKind, revocation::Revocation};

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
    /// `Store::create_session`.
    pub(super) async fn open_session(
        &self,
        new: &NewSession<'_>,
    ) -> StoreResult<Option<Vec<Revocation>>> {
        if let Some(login) = &self.login {
            return login.open_session(new).await;
        }
        // Each backend has one of the two ways: SQLite the first, PostgreSQL this one.
        let Some(sql) = DB::open_session_in_one() else {
            return Err(StoreError::Other(
                "no way to open a session on this backend".into(),
            ));
        };
        let s = new.session;
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let locked = sqlx::query(q::LOCK_USER_AS_CHECKED)
            .bind(&s.user_id)
            .bind(new.checked_hash)
            .bind(new.rehashed.unwrap_or(new.checked_hash))
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&locked) != 1 {
            return Ok(None);
        }
        // Under the user's row lock: concurrent logins of the user take their turns, so the cap
        // holds exactly.
        // The four parts' values in turn: the throttle's name, the cap's, the session's, its token's.
        let keep = i64::from(new.max_live_sessions.saturating_sub(1));
        let parts = sqlx::query(sql)
            .bind(new.username)
            .bind(s.created_at)
            .bind(&s.user_id)
            .bind(i64::from(new.max_live_sessions))
            .bind(keep);
        let parts = Self::session_values(parts, s);
        let opened = Self::token_values(parts, new.token_hash, &s.id, s.generation, s.created_at);
        let evicted = opened.fetch_all(&mut *tx).await?;
        let evicted = evicted
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<String>, _>>()?;
        let revoked = Revoked {
            ids: &evicted,
            now: s.created_at,
            expires_at: new.events_expire_at,
        };
        // The numbered writes last: the counters stay locked from here to the commit (the login
        // event's device check, two index seeks, runs in its insert, under the counter's lock).
        let events = self.record_revoked(&mut tx, &revoked, None).await?;
        let origin = &new.event.origin;
        Self::record_session_events(
            &mut tx,
            &s.user_id,
            EventKind::SessionEvicted,
            origin,
            &evicted,
            s.created_at,
        )
        .await?;
        Self::record_event(&mut tx, new.event, s.created_at).await?;
        tx.commit().await?;
        Ok(Some(events))
    }
}
