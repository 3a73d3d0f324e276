//! A login's session, opened in one step once its password matched: the user's row locked as the
//! login found it (what follows must see the sessions of logins that held the lock before), the
//! attempt counted against the name cleared, the least recently used sessions beyond the cap
//! revoked, the session and its first refresh token written, then the feed and account events of
//! it all. SQLite makes these writes statement by statement in one transaction
//! (`login_writes.rs`); PostgreSQL in one call of a function that runs the same statements
//! (`postgres_open_session.rs`). The bounds are those of `sql.rs` (see `store_impl.rs` why they
//! are written again).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{
    NewSession, StoreError, StoreResult,
    rows::session_revocations,
    sql::{Backend, SqlStore},
};
use crate::domain::revocation::Revocation;

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
        let Some(call) = DB::open_session_call(new, &self.origin) else {
            return Err(StoreError::Other(
                "no way to open a session on this backend".into(),
            ));
        };
        let Some(row) = call?
            .fetch_optional(&mut *self.writer.acquire().await?)
            .await?
        else {
            // The user was no longer as the login found it: nothing was written.
            return Ok(None);
        };
        let evicted: String = row.try_get(0)?;
        let first_seq: Option<i64> = row.try_get(1)?;
        let ids: Vec<String> =
            serde_json::from_str(&evicted).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Some(first_seq.map_or_else(Vec::new, |first| {
            session_revocations(first, &ids, new.events_expire_at)
        })))
    }
}
