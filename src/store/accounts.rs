//! [`AccountStore`]: what user administration and account activity need of the store (listings,
//! scope and enable changes, account events), with its one implementation over sqlx. Every change
//! here commits with its account event.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Connection, Decode, Encode, Executor, IntoArguments, Type};

use super::{
    StoreResult, UserRecord, queries as q,
    rows::{EventRow, UserPageRow},
    sql::{Backend, SqlStore},
};
use crate::domain::{
    UnixMs,
    event::{AccountEvent, EventKind, NewEvent},
    scope,
};

/// One page of users by name: those from `from` (inclusive) before `until` (exclusive), after
/// `after` when it is given (exclusive: the last name of the previous page).
#[derive(Debug, Clone, Copy)]
pub struct UsersPage<'a> {
    pub from: &'a str,
    pub until: &'a str,
    pub after: Option<&'a str>,
    pub limit: i64,
    /// Sessions live at this time are counted.
    pub now: UnixMs,
}

/// One page of account events, newest first, numbered below `before`.
#[derive(Debug, Clone, Copy)]
pub struct EventsPage<'a> {
    /// `None`: every user's.
    pub user_id: Option<&'a str>,
    /// Empty: every kind.
    pub kinds: &'a [EventKind],
    pub before: i64,
    pub limit: i64,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Events recorded on their own (a failed login, a lockout), in one transaction.
    async fn record_events(&self, events: &[NewEvent], now: UnixMs) -> StoreResult<()>;
    /// Lets a disabled user log in again; `false` when there is no such user.
    async fn enable_user(&self, user_id: &str, now: UnixMs, event: &NewEvent) -> StoreResult<bool>;
    /// Replaces the scopes the user holds; `false` when there is no such user.
    async fn set_scopes(
        &self,
        user_id: &str,
        scopes: &[String],
        now: UnixMs,
        event: &NewEvent,
    ) -> StoreResult<bool>;
    /// How many sessions of the user are live at `now`.
    async fn count_user_sessions(&self, user_id: &str, now: UnixMs) -> StoreResult<i64>;
    /// Users with their live sessions, by name.
    async fn users_page(&self, page: &UsersPage<'_>) -> StoreResult<Vec<(UserRecord, i64)>>;
    async fn events_page(&self, page: &EventsPage<'_>) -> StoreResult<Vec<AccountEvent>>;
    /// Events with `seq > after`, in order, at most `limit`.
    async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<AccountEvent>>;
}

#[async_trait]
impl<DB> AccountStore for SqlStore<DB>
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
    async fn record_events(&self, events: &[NewEvent], now: UnixMs) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        for event in events {
            Self::record_event(&mut tx, event, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn enable_user(&self, user_id: &str, now: UnixMs, event: &NewEvent) -> StoreResult<bool> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(q::ENABLE_USER)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) != 1 {
            return Ok(false);
        }
        Self::record_event(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_scopes(
        &self,
        user_id: &str,
        scopes: &[String],
        now: UnixMs,
        event: &NewEvent,
    ) -> StoreResult<bool> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(q::SET_SCOPES)
            .bind(scope::join(scopes))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) != 1 {
            return Ok(false);
        }
        Self::record_event(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn count_user_sessions(&self, user_id: &str, now: UnixMs) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(q::COUNT_USER_LIVE_SESSIONS)
            .bind(user_id)
            .bind(now)
            .fetch_one(&mut *self.readers.acquire().await?)
            .await?)
    }

    async fn users_page(&self, p: &UsersPage<'_>) -> StoreResult<Vec<(UserRecord, i64)>> {
        let (sql, lower) = match p.after {
            Some(after) => (q::USERS_AFTER, after),
            None => (q::USERS_FROM, p.from),
        };
        let rows: Vec<UserPageRow> = sqlx::query_as(sql)
            .bind(lower)
            .bind(p.until)
            .bind(p.limit)
            .bind(p.now)
            .fetch_all(&mut *self.readers.acquire().await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (UserRecord::from(r.user), r.live_sessions))
            .collect())
    }

    async fn events_page(&self, p: &EventsPage<'_>) -> StoreResult<Vec<AccountEvent>> {
        let mut query = match p.user_id {
            Some(user_id) => sqlx::query_as(q::USER_EVENTS_BEFORE).bind(user_id),
            None => sqlx::query_as(q::EVENTS_BEFORE),
        }
        .bind(p.before);
        for kind in kind_slots(p.kinds) {
            query = query.bind(kind.as_str());
        }
        let rows: Vec<EventRow> = query
            .bind(p.limit)
            .fetch_all(&mut *self.readers.acquire().await?)
            .await?;
        Ok(rows.into_iter().map(AccountEvent::from).collect())
    }

    async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<AccountEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(q::EVENTS_AFTER)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *self.readers.acquire().await?)
            .await?;
        Ok(rows.into_iter().map(AccountEvent::from).collect())
    }
}

/// The fourteen kinds bound to a listing's `IN` list: those asked for, the first repeated to fill
/// the slots; every kind when none is asked for.
fn kind_slots(kinds: &[EventKind]) -> [EventKind; 14] {
    let mut slots = EventKind::ALL;
    if let Some(&first) = kinds.first() {
        for (i, slot) in slots.iter_mut().enumerate() {
            *slot = kinds.get(i).copied().unwrap_or(first);
        }
    }
    slots
}
