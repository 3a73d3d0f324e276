//! PostgreSQL: a login's session opened by one call of a PL/pgSQL function, so in one round trip
//! and one implicit transaction, where the statements one by one took eleven at the session cap
//! (`BEGIN`, the user's lock, the session's writes, the feed's number, its events and their
//! announcement, the account events' numbers and rows, `COMMIT`) and six below it.
//!
//! The function runs the statements of `queries.rs`, in the order and with the row locks they had
//! as a transaction; each of its statements takes a fresh snapshot as it starts (a `VOLATILE`
//! function's do), so what waited for a lock sees what the holder committed, as before. Its text is
//! built from those statements, each `$n` replaced by one of the call's parameters or by a value
//! the function has found, so no SQL is written twice.
//!
//! The function is created with the schema, by the first process that migrates the database
//! (`latchkey migrate` or a starting server), under an advisory lock so that replicas starting
//! together create it once. It is named after a digest of its text: a release whose function
//! differs creates one of its own beside the other, so replicas of two releases can share a
//! database during a rolling deploy.

use std::sync::LazyLock;

use aws_lc_rs::digest;
use sqlx::{PgPool, Postgres};

use super::{
    NewSession, StoreError, StoreResult, listen, queries as q, renumber,
    sql::{Bound, SqlStore},
};
use crate::domain::event::EventKind;

/// The call's parameters, by number from `$1`, as `call` binds them: `LOCK_USER_AS_CHECKED`'s
/// three (`$1`–`$3`), `POSTGRES_OPEN_SESSION`'s twenty-one (`$4`–`$24`), then `$25` when the feed
/// events of evicted sessions expire, `$26` and `$27` the announcement's channel and its payload
/// before the number, `$28` the kind of an evicted session's account event, and `$29`–`$36` the
/// login's account event (user, kind, session, address, device, client, `new_device_since`,
/// detail). The statements after the session's reuse its user (`$1`), its time (`$5`) and the
/// login's origin (`$32`-`$34`).
const PARAMETERS: [&str; 36] = [
    "text", "text", "text", // the lock
    "text", "bigint", "text", "bigint", "bigint", // the throttle's clearing, the cap
    "text", "text", "text", "text", "text", "text", // the session...
    "bigint", "bigint", "bigint", "bigint", "bigint", "bytea", // ...
    "bytea", "text", "bigint", "bigint", // its first token
    "bigint", "text", "text", "text", // feed expiry, announcement, evicted kind
    "text", "text", "text", "text", "text", "text", "bigint", "text", // the login's event
];

/// The function, as created and as called.
struct Function {
    /// `CREATE OR REPLACE FUNCTION …`.
    create: String,
    /// Its name with its parameters' types, for `to_regprocedure`.
    signature: String,
    /// `SELECT * FROM name($1, …, $36)`: no row when the user was not as the login found it;
    /// otherwise the evicted sessions' ids as a JSON array and the first feed number written for
    /// them (none when there were none).
    call: String,
    /// Serialises the processes that would create it at once.
    lock_key: i64,
}

/// `None` if a statement of `queries.rs` numbers more parameters than its place here gives it
/// (a unit test builds it).
static FUNCTION: LazyLock<Option<Function>> = LazyLock::new(function);

fn function() -> Option<Function> {
    let s = |sql: &str, values: &[&str]| renumber::substitute(sql, values);
    let lock = q::LOCK_USER_AS_CHECKED;
    // `POSTGRES_OPEN_SESSION`'s `$1`-`$21` are the call's `$4`-`$24`.
    let shifted: Vec<String> = (4..=24).map(|n| format!("${n}")).collect();
    let shifted: Vec<&str> = shifted.iter().map(String::as_str).collect();
    let open = s(&q::POSTGRES_OPEN_SESSION, &shifted)?;
    let count = "cardinality(v_evicted)";
    let ids = "(array_to_json(v_evicted))";
    let take_feed = s(q::TAKE_SEQS, &[count])?;
    let feed = s(
        q::POSTGRES_INSERT_SESSION_EVENTS,
        &["v_first", "$25", "$5", ids],
    )?;
    let announce = s(q::NOTIFY_REVOCATIONS, &["$26", "($27 || v_last)"])?;
    let announce = announce.strip_prefix("SELECT ")?;
    let take_events = s(q::TAKE_EVENT_SEQS, &[count])?;
    let evicted_events = s(
        q::POSTGRES_INSERT_SESSION_ACCOUNT_EVENTS,
        &[
            "(v_last - cardinality(v_evicted) + 1)",
            "$5",
            "$1",
            "$28",
            "$32",
            "$33",
            "$34",
            ids,
        ],
    )?;
    let take_event = s(q::TAKE_EVENT_SEQS, &["1"])?;
    let event = s(
        q::INSERT_EVENT,
        &[
            "v_last", "$5", "$29", "$30", "$31", "$32", "$33", "$34", "$35", "$36",
        ],
    )?;
    // One statement a line: an error's context names the line it failed on.
    let body = [
        "DECLARE v_evicted text[]; v_first bigint; v_last bigint;".to_owned(),
        "BEGIN".to_owned(),
        format!("{lock};"),
        "IF NOT FOUND THEN RETURN; END IF;".to_owned(),
        format!("{open} INTO v_evicted;"),
        format!("IF {count} > 0 THEN"),
        format!("{take_feed} INTO v_last;"),
        format!("v_first := v_last - {count} + 1;"),
        format!("{feed};"),
        format!("PERFORM {announce};"),
        format!("{take_events} INTO v_last;"),
        format!("{evicted_events};"),
        "END IF;".to_owned(),
        format!("{take_event} INTO v_last;"),
        format!("{event};"),
        "out_evicted := array_to_json(v_evicted)::text;".to_owned(),
        "out_first := v_first;".to_owned(),
        "RETURN NEXT;".to_owned(),
        "END".to_owned(),
    ]
    .join("\n");
    let types = PARAMETERS.join(", ");
    let rest = format!(
        "({types}) RETURNS TABLE (out_evicted text, out_first bigint) \
         LANGUAGE plpgsql VOLATILE AS $latchkey${body}$latchkey$"
    );
    let digest = digest::digest(&digest::SHA256, rest.as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = format!("latchkey_open_session_{hex}");
    let arguments: Vec<String> = (1..=PARAMETERS.len()).map(|n| format!("${n}")).collect();
    Some(Function {
        create: format!("CREATE OR REPLACE FUNCTION {name}{rest}"),
        signature: format!("{name}({})", PARAMETERS.join(",")),
        call: format!("SELECT * FROM {name}({})", arguments.join(", ")),
        lock_key: i64::from_be_bytes(digest.as_ref()[8..16].try_into().ok()?),
    })
}

fn built() -> StoreResult<&'static Function> {
    FUNCTION.as_ref().ok_or_else(|| {
        StoreError::Other("the function that opens a session could not be built".into())
    })
}

/// Creates the function in this database unless it is there already.
pub(super) async fn install(pool: &PgPool) -> StoreResult<()> {
    create(pool, built()?)
        .await
        .map_err(|e| StoreError::open("creating the function that opens sessions failed", e))
}

async fn create(pool: &PgPool, function: &'static Function) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(function.lock_key)
        .execute(&mut *tx)
        .await?;
    let there: bool = sqlx::query_scalar("SELECT to_regprocedure($1) IS NOT NULL")
        .bind(function.signature.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if !there {
        sqlx::raw_sql(function.create.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The call that opens `new`'s session, its announcement naming `origin`.
pub(super) fn call(new: &NewSession<'_>, origin: &str) -> StoreResult<Bound<Postgres>> {
    let s = new.session;
    let call = sqlx::query(built()?.call.as_str())
        .bind(&s.user_id)
        .bind(new.checked_hash)
        .bind(new.rehashed.unwrap_or(new.checked_hash))
        .bind(new.username)
        .bind(s.created_at)
        .bind(&s.user_id)
        .bind(i64::from(new.max_live_sessions))
        .bind(i64::from(new.max_live_sessions.saturating_sub(1)));
    let call = SqlStore::<Postgres>::session_values(call, s);
    let call =
        SqlStore::<Postgres>::token_values(call, new.token_hash, &s.id, s.generation, s.created_at);
    let call = call
        .bind(new.events_expire_at)
        .bind(listen::CHANNEL)
        .bind(listen::payload_prefix(origin))
        .bind(EventKind::SessionEvicted.as_str());
    Ok(SqlStore::<Postgres>::event_values(call, new.event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_is_built_from_the_statements_with_every_parameter_in_its_place() {
        let function = built().unwrap();
        let create = &function.create;
        let has = |part: &str| assert!(create.contains(part), "{part} in {create}");
        has("WHERE id = $1 AND password_hash IN ($2, $3)");
        has("DELETE FROM login_throttle WHERE username = $4)");
        has("SET revoked_at = $5 WHERE revoked_at IS NULL");
        has("LIMIT $7 OFFSET $8");
        has("NULL, $19, NULL, $20)), token AS");
        has("VALUES ($21, $22, $23, $24)) SELECT ARRAY(SELECT id FROM evicted) INTO v_evicted;");
        // The feed: numbered from v_first, expiring at $25, written at $5.
        has("SELECT v_first + n - 1, 'session', id, NULL, $25, $5 FROM json_array_elements_text(");
        has("PERFORM pg_notify($26, ($27 || v_last))");
        // The evicted sessions' account events: numbered in their own run, at $5, the user $1,
        // kind $28, the login's address, device and client.
        has(
            "SELECT (v_last - cardinality(v_evicted) + 1) + n - 1, $5, $1, $28, id, $32, $33, $34,",
        );
        has("VALUES (v_last, $5, $29, $30, $31, $32, $33, $34, $35 IS NOT NULL");
        has("'' AND at >= $35), $36)");
        assert_eq!(function.call.matches('$').count(), PARAMETERS.len());
        assert!(function.call.ends_with("$35, $36)"));
        assert!(function.signature.ends_with("bigint,text)"));
    }
}
