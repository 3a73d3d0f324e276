//! A login's session, opened in one transaction once its password matched: the user's row locked
//! as the login found it (its own statement: what follows must see the sessions of logins that
//! held the lock before), the attempt counted against the name cleared, the least recently used
//! sessions beyond the cap revoked, the session and its first refresh token written, then the feed
//! and account events of it all. On PostgreSQL the four writes after the lock are one statement
//! (`queries::POSTGRES_OPEN_SESSION`), on SQLite four. The bounds are those of `sql.rs` (see
//! `store_impl.rs` why they are written again).

use sqlx::{ColumnIndex, Connection, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{
    NewSession, StoreResult, queries as q,
    sql::{Backend, Bound, Revoked, SqlStore},
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
        let keep = i64::from(new.max_live_sessions.saturating_sub(1));
        let clear = |query: Bound<DB>| query.bind(new.username);
        let evict = |query: Bound<DB>| {
            query
                .bind(s.created_at)
                .bind(&s.user_id)
                .bind(i64::from(new.max_live_sessions))
                .bind(keep)
        };
        let session = |query| Self::session_values(query, s);
        let token =
            |query| Self::token_values(query, new.token_hash, &s.id, s.generation, s.created_at);
        let evicted = if let Some(sql) = DB::open_session_in_one() {
            let opened = token(session(evict(clear(sqlx::query(sql)))));
            opened.fetch_all(&mut *tx).await?
        } else {
            clear(sqlx::query(q::CLEAR_THROTTLE))
                .execute(&mut *tx)
                .await?;
            let evicted = evict(sqlx::query(q::EVICT_SESSIONS))
                .fetch_all(&mut *tx)
                .await?;
            session(sqlx::query(q::INSERT_SESSION))
                .execute(&mut *tx)
                .await?;
            token(sqlx::query(q::INSERT_TOKEN))
                .execute(&mut *tx)
                .await?;
            evicted
        };
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
