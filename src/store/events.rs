//! Account events written inside a caller's transaction, so that they commit with what they record
//! (a revocation without its event, or the reverse, cannot happen). Numbered by the one row of
//! `event_counter`, locked until commit: numbers follow commit order, as the revocation feed's do.
//! The bounds are those of `sql.rs` (see `store_impl.rs` why they are written again).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Transaction, Type};

use super::{
    StoreResult, queries as q,
    sql::{Backend, Bound, SqlStore},
};
use crate::domain::{UnixMs, event::NewEvent};

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
    /// Writes one account event at `now`; a login's `new_device` is decided by the same statement,
    /// from the user's logins that committed before this transaction.
    pub(super) async fn record_event(
        tx: &mut Transaction<'_, DB>,
        event: &NewEvent,
        now: UnixMs,
    ) -> StoreResult<()> {
        let seq = Self::take_seqs(tx, q::TAKE_EVENT_SEQS, 1).await?;
        let insert = sqlx::query(q::INSERT_EVENT).bind(seq).bind(now);
        Self::event_values(insert, event).execute(&mut **tx).await?;
        Ok(())
    }

    /// `INSERT_EVENT`'s values after its number and time (`$3`-`$10`), bound after `query`'s.
    pub(super) fn event_values(query: Bound<DB>, event: &NewEvent) -> Bound<DB> {
        let o = &event.origin;
        query
            .bind(&event.user_id)
            .bind(event.kind.as_str())
            .bind(&o.session_id)
            .bind(&o.ip)
            .bind(&o.device)
            .bind(&o.client_id)
            .bind(event.new_device_since)
            .bind(&event.detail)
    }
}

/// An account event's detail, with the number of sessions its change revoked.
pub(super) fn revoked_detail(detail: &str, sessions: usize) -> String {
    let revoked = match sessions {
        1 => "1 session revoked".to_owned(),
        n => format!("{n} sessions revoked"),
    };
    if detail.is_empty() {
        revoked
    } else {
        format!("{detail}; {revoked}")
    }
}
