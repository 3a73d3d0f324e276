//! Every statement the store runs, named in one place, so that a test can check each one's plan on
//! both backends and a reader finds the SQL without reading the Rust around it (two,
//! `POSTGRES_OPEN_SESSION` and `POSTGRES_ROTATE_ALL`, are made of the others, their text built
//! once, at its first use). Past 400 lines for that reason, and not split: one place for all of
//! them is what the plan test and the reader rely on, and the lists at the end must name them all.
//! The statements are portable (numbered `$n` parameters, `RETURNING`, `ON CONFLICT`): one text
//! serves SQLite and PostgreSQL alike, but for the two that take a list of session ids as one JSON
//! array (so that any number of rows costs one statement), where each database has its own JSON
//! function, and for PostgreSQL's statements that do the work of several in one (a data-modifying
//! `WITH`): one round trip instead of several.

use std::sync::LazyLock;

use super::renumber;

/// The columns of a session: the fields of [`SessionRecord`](super::SessionRecord).
macro_rules! session_columns {
    () => {
        "s.id, s.user_id, s.client_id, s.device, s.ip, s.scope, s.created_at, s.last_used_at, \
         s.idle_expires_at, s.absolute_expires_at, s.revoked_at, s.generation, s.rotated_at, \
         s.sealed_token"
    };
}

pub const PING: &str = "SELECT 1";
/// SQLite only: the file the database is in; empty for one in memory.
pub const SQLITE_DATABASE_FILE: &str = "SELECT file FROM pragma_database_list WHERE name = 'main'";

pub const CREATE_USER: &str = "INSERT INTO users \
     (id, username, password_hash, scopes, disabled, not_before, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const USER_BY_NAME: &str = "SELECT * FROM users WHERE username = $1";
pub const USER_BY_ID: &str = "SELECT * FROM users WHERE id = $1";
pub const ENABLE_USER: &str = "UPDATE users SET disabled = FALSE WHERE id = $1";
/// Locks the user's row while the user is as the login found it (enabled, with the password hash
/// it checked, $2, or already that hash's re-hash, $3), so that a session opens either before a
/// password change or disable, or not at all; and stores the re-hash ($3 = $2 when there is none).
pub const LOCK_USER_AS_CHECKED: &str = "UPDATE users SET password_hash = $3 \
     WHERE id = $1 AND password_hash IN ($2, $3) AND NOT disabled";
/// Applies a user change: the cutoff never goes down, a new password hash replaces the old one
/// when given, and a disable sticks.
pub const CHANGE_USER: &str = "UPDATE users \
     SET not_before = CASE WHEN not_before < $1 THEN $1 ELSE not_before END, \
     password_hash = COALESCE($2, password_hash), disabled = (disabled OR $3) WHERE id = $4";

pub const THROTTLE: &str = "SELECT * FROM login_throttle WHERE username = $1";
/// PostgreSQL only (SQLite reads both in the attempt's transaction, `login_writes.rs`): a login's
/// two reads before it counts its attempt, in one round trip: the name's throttle record and its
/// user, each columns of NULLs when there is none.
pub const POSTGRES_THROTTLE_AND_USER: &str = "SELECT t.failures, t.window_started_at, t.locked_until, \
     t.lockouts, u.id, u.username, u.password_hash, u.scopes, u.disabled, u.not_before, \
     u.created_at \
     FROM (SELECT CAST($1 AS TEXT) AS name) AS asked \
     LEFT JOIN login_throttle AS t ON t.username = asked.name \
     LEFT JOIN users AS u ON u.username = asked.name";
/// The first failure of a username; does nothing when another replica's got there first.
pub const INSERT_THROTTLE: &str = "INSERT INTO login_throttle \
     (failures, window_started_at, locked_until, lockouts, username) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING";
/// Replaces the record only if it is still the one that was read ($6–$9).
pub const SWAP_THROTTLE: &str = "UPDATE login_throttle \
     SET failures = $1, window_started_at = $2, locked_until = $3, lockouts = $4 \
     WHERE username = $5 AND failures = $6 AND window_started_at = $7 AND locked_until = $8 \
     AND lockouts = $9";
pub const CLEAR_THROTTLE: &str = "DELETE FROM login_throttle WHERE username = $1";

pub const INSERT_SESSION: &str = "INSERT INTO sessions \
     (id, user_id, client_id, device, ip, scope, created_at, last_used_at, idle_expires_at, \
     absolute_expires_at, revoked_at, generation, rotated_at, sealed_token) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, NULL, $12)";
pub const INSERT_TOKEN: &str = "INSERT INTO refresh_tokens \
     (hash, session_id, generation, issued_at) VALUES ($1, $2, $3, $4)";
/// A refresh token's session, with the token's generation and the scopes the user holds now.
pub const FIND_REFRESH: &str = concat!(
    "SELECT ",
    session_columns!(),
    ", t.generation AS token_generation, u.scopes AS user_scopes FROM refresh_tokens t \
     JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id WHERE t.hash = $1"
);
/// The compare-and-swap: only the generation that was judged, only while not revoked.
pub const ROTATE: &str = "UPDATE sessions SET generation = generation + 1, rotated_at = $1, \
     last_used_at = $2, idle_expires_at = $3, sealed_token = $4 \
     WHERE id = $5 AND generation = $6 AND revoked_at IS NULL";
pub const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING user_id";
/// Every live session of the user but `$3` (empty: none is kept; no session id is empty).
pub const REVOKE_USER_SESSIONS: &str = "UPDATE sessions SET revoked_at = $1 \
     WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3 RETURNING id";
/// The session cap, at login: revokes the user's live sessions beyond the `$4` most recently used
/// (at most `$3` of them), so that the one opening makes `$4 + 1`. `revoked_at IS NULL` outside the
/// subquery too: on PostgreSQL a row that a logout revoked while this waited for it is checked
/// again as it now is, and left alone (no second revocation, no second feed event).
pub const EVICT_SESSIONS: &str = "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL \
     AND id IN \
     (SELECT id FROM sessions WHERE user_id = $2 AND revoked_at IS NULL \
      AND idle_expires_at > $1 AND absolute_expires_at > $1 \
      ORDER BY last_used_at DESC, id DESC LIMIT $3 OFFSET $4) RETURNING id";
pub const LIVE_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL \
     AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2 ORDER BY s.created_at DESC"
);
pub const COUNT_LIVE_SESSIONS: &str = "SELECT COUNT(*) FROM sessions \
     WHERE revoked_at IS NULL AND idle_expires_at > $1 AND absolute_expires_at > $1";

/// Takes the next `$1` feed numbers; returns the last. The counter row stays locked until the
/// transaction commits, so numbers are handed out in commit order (a reader never later finds an
/// event below one it saw).
pub const TAKE_SEQS: &str =
    "UPDATE revocation_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq";
pub const INSERT_REVOCATION: &str = "INSERT INTO revocations \
     (seq, kind, target, not_before, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
/// A session event for each id of the JSON array `$4`, numbered from `$1` in the array's order.
pub const SQLITE_INSERT_SESSION_EVENTS: &str = "INSERT INTO revocations \
     (seq, kind, target, not_before, expires_at, created_at) \
     SELECT $1 + key, 'session', value, NULL, $2, $3 FROM json_each($4)";
pub const POSTGRES_INSERT_SESSION_EVENTS: &str = "INSERT INTO revocations \
     (seq, kind, target, not_before, expires_at, created_at) \
     SELECT $1 + n - 1, 'session', id, NULL, $2, $3 \
     FROM json_array_elements_text($4::json) WITH ORDINALITY AS ids (id, n)";
pub const REVOCATIONS_AFTER: &str =
    "SELECT * FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2";
/// PostgreSQL only (see `listen.rs`): tells every listening replica, when the transaction commits,
/// that revocations up to the number `$2` (as text) were written. Binds the channel as `$1`.
pub const NOTIFY_REVOCATIONS: &str = "SELECT pg_notify($1, $2)";

/// The columns of an account event, in the order the inserts below bind them.
macro_rules! event_columns {
    () => {
        "(seq, at, user_id, kind, session_id, ip, device, client_id, new_device, detail)"
    };
}

/// Takes the next `$1` account-event numbers; returns the last (the scheme of `TAKE_SEQS`).
pub const TAKE_EVENT_SEQS: &str =
    "UPDATE event_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq";
/// One account event. `new_device` is decided in the same statement when `$9` is a time (a
/// login's): true unless the user logged in since `$9` from the address `$6` or the device `$7` (a
/// named one), found by two seeks, one per index, each straight to the matching logins. A
/// statement of its own, after `TAKE_EVENT_SEQS`: on PostgreSQL its snapshot is then taken once
/// the counter is locked, so it sees the logins of every transaction that held the counter before.
pub const INSERT_EVENT: &str = concat!(
    "INSERT INTO account_events ",
    event_columns!(),
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9 IS NOT NULL AND NOT EXISTS \
     (SELECT 1 FROM account_events WHERE user_id = $3 AND kind = 'login' AND ip = $6 AND at >= $9 \
      UNION ALL SELECT 1 FROM account_events WHERE user_id = $3 \
      AND kind = 'login' AND device = $7 AND $7 <> '' AND at >= $9), $10)"
);
/// An event of kind `$4` for each session id of the JSON array `$8`, numbered from `$1`.
pub const SQLITE_INSERT_SESSION_ACCOUNT_EVENTS: &str = concat!(
    "INSERT INTO account_events ",
    event_columns!(),
    " SELECT $1 + key, $2, $3, $4, value, $5, $6, $7, FALSE, '' FROM json_each($8)"
);
pub const POSTGRES_INSERT_SESSION_ACCOUNT_EVENTS: &str = concat!(
    "INSERT INTO account_events ",
    event_columns!(),
    " SELECT $1 + n - 1, $2, $3, $4, id, $5, $6, $7, FALSE, '' \
     FROM json_array_elements_text($8::json) WITH ORDINALITY AS ids (id, n)"
);
pub const EVENTS_AFTER: &str = "SELECT * FROM account_events WHERE seq > $1 ORDER BY seq LIMIT $2";
/// Newest first, below `$1`, of the kinds `$2`–`$15`: fourteen slots, one per kind there is (the
/// store repeats a kind where fewer are asked for), so that one portable statement serves any filter.
pub const EVENTS_BEFORE: &str = "SELECT * FROM account_events WHERE seq < $1 \
     AND kind IN ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ORDER BY seq DESC LIMIT $16";
/// The same for one user, `$1`: below `$2`, kinds `$3`–`$16`.
pub const USER_EVENTS_BEFORE: &str = "SELECT * FROM account_events WHERE user_id = $1 \
     AND seq < $2 AND kind IN ($3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ORDER BY seq DESC LIMIT $17";

/// Users named from `$1` (inclusive) up to `$2` (exclusive), by name, with their live sessions at
/// `$4`: the first page of a listing.
pub const USERS_FROM: &str = "SELECT u.*, (SELECT COUNT(*) FROM sessions s \
     WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.idle_expires_at > $4 \
     AND s.absolute_expires_at > $4) AS live_sessions \
     FROM users u WHERE u.username >= $1 AND u.username < $2 ORDER BY u.username LIMIT $3";
/// The next pages: after `$1` (exclusive).
pub const USERS_AFTER: &str = "SELECT u.*, (SELECT COUNT(*) FROM sessions s \
     WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.idle_expires_at > $4 \
     AND s.absolute_expires_at > $4) AS live_sessions \
     FROM users u WHERE u.username > $1 AND u.username < $2 ORDER BY u.username LIMIT $3";
pub const COUNT_USER_LIVE_SESSIONS: &str = "SELECT COUNT(*) FROM sessions \
     WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2";
pub const SET_SCOPES: &str = "UPDATE users SET scopes = $1 WHERE id = $2";
/// Deletes a user's sessions (their refresh tokens go with them) once they are revoked, then the
/// user: `DeleteUser`, after the revocation in the same transaction.
pub const DELETE_USER_TOKENS: &str = "DELETE FROM refresh_tokens WHERE session_id IN \
     (SELECT id FROM sessions WHERE user_id = $1)";
pub const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";
pub const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";

/// A session's refresh tokens go first, spent ones included (kept until then, so that a reuse is
/// caught for the session's whole life); the session follows once none is left, so that no
/// statement deletes more than a batch, however many tokens a long session spent.
pub const PURGE_TOKENS_OF_EXPIRED_SESSIONS: &str = "DELETE FROM refresh_tokens WHERE hash IN \
     (SELECT t.hash FROM sessions s JOIN refresh_tokens t ON t.session_id = s.id \
      WHERE s.idle_expires_at < $1 LIMIT $2)";
pub const PURGE_TOKENS_OF_REVOKED_SESSIONS: &str = "DELETE FROM refresh_tokens WHERE hash IN \
     (SELECT t.hash FROM sessions s JOIN refresh_tokens t ON t.session_id = s.id \
      WHERE s.revoked_at < $1 LIMIT $2)";
/// Of the `$2` sessions that ended first, those with no token left. A bounded look: asking for `$2`
/// tokenless sessions anywhere scanned the whole backlog whenever fewer were found, which in a
/// large purge was every round, under the write lock.
pub const PURGE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE id IN \
     (SELECT id FROM sessions WHERE idle_expires_at < $1 ORDER BY idle_expires_at LIMIT $2) \
     AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = sessions.id)";
pub const PURGE_REVOKED_SESSIONS: &str = "DELETE FROM sessions WHERE id IN \
     (SELECT id FROM sessions WHERE revoked_at < $1 ORDER BY revoked_at LIMIT $2) \
     AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = sessions.id)";
/// Erases (sets to `$3`, empty) the sealed tokens of sessions rotated before `$1`: their grace
/// window has passed, so no retry can ask for them. The outer `rotated_at` test is checked again
/// on a row a concurrent rotation just changed, which then keeps its new sealed token.
pub const ERASE_SEALED_TOKENS: &str = "UPDATE sessions SET sealed_token = $3 \
     WHERE rotated_at < $1 AND id IN (SELECT id FROM sessions \
      WHERE rotated_at < $1 AND length(sealed_token) > 0 LIMIT $2)";
pub const PURGE_REVOCATIONS: &str = "DELETE FROM revocations WHERE seq IN \
     (SELECT seq FROM revocations WHERE expires_at < $1 LIMIT $2)";
pub const PURGE_THROTTLE: &str = "DELETE FROM login_throttle WHERE username IN \
     (SELECT username FROM login_throttle \
      WHERE window_started_at < $1 AND locked_until < $1 LIMIT $2)";
pub const PURGE_EVENTS: &str = "DELETE FROM account_events WHERE seq IN \
     (SELECT seq FROM account_events WHERE at < $1 LIMIT $2)";

pub const INSERT_KEY: &str =
    "INSERT INTO signing_keys (kid, alg, sealed_private, created_at) VALUES ($1, $2, $3, $4)";
pub const KEYS: &str = "SELECT * FROM signing_keys ORDER BY created_at, kid";

/// Every statement that finds rows to read, update or delete (on the request path and in
/// housekeeping), by name: each must be an index lookup, which a test checks on both backends,
/// binding parameters of the right types.
pub const LOOKUPS: &[(&str, &str)] = &[
    ("user_by_name", USER_BY_NAME),
    ("user_by_id", USER_BY_ID),
    ("enable_user", ENABLE_USER),
    ("lock_user_as_checked", LOCK_USER_AS_CHECKED),
    ("change_user", CHANGE_USER),
    ("throttle", THROTTLE),
    ("swap_throttle", SWAP_THROTTLE),
    ("clear_throttle", CLEAR_THROTTLE),
    ("find_refresh", FIND_REFRESH),
    ("rotate", ROTATE),
    ("revoke_session", REVOKE_SESSION),
    ("revoke_user_sessions", REVOKE_USER_SESSIONS),
    ("evict_sessions", EVICT_SESSIONS),
    ("live_sessions", LIVE_SESSIONS),
    ("count_live_sessions", COUNT_LIVE_SESSIONS),
    ("take_seqs", TAKE_SEQS),
    ("revocations_after", REVOCATIONS_AFTER),
    (
        "purge_tokens_of_expired_sessions",
        PURGE_TOKENS_OF_EXPIRED_SESSIONS,
    ),
    (
        "purge_tokens_of_revoked_sessions",
        PURGE_TOKENS_OF_REVOKED_SESSIONS,
    ),
    ("purge_expired_sessions", PURGE_EXPIRED_SESSIONS),
    ("purge_revoked_sessions", PURGE_REVOKED_SESSIONS),
    ("erase_sealed_tokens", ERASE_SEALED_TOKENS),
    ("purge_revocations", PURGE_REVOCATIONS),
    ("purge_throttle", PURGE_THROTTLE),
    ("purge_events", PURGE_EVENTS),
    ("take_event_seqs", TAKE_EVENT_SEQS),
    ("insert_event", INSERT_EVENT),
    ("events_after", EVENTS_AFTER),
    ("events_before", EVENTS_BEFORE),
    ("user_events_before", USER_EVENTS_BEFORE),
    ("users_from", USERS_FROM),
    ("users_after", USERS_AFTER),
    ("count_user_live_sessions", COUNT_USER_LIVE_SESSIONS),
    ("set_scopes", SET_SCOPES),
    ("delete_user_tokens", DELETE_USER_TOKENS),
    ("delete_user_sessions", DELETE_USER_SESSIONS),
    ("delete_user", DELETE_USER),
];

/// PostgreSQL only: what a login's session writes once its user's row is locked, in one statement
/// of four parts: `CLEAR_THROTTLE`, `EVICT_SESSIONS`, `INSERT_SESSION` and `INSERT_TOKEN`, each
/// with its parameters renumbered to follow the previous part's (so that binding each part's values
/// in turn binds them all). Returns the ids of the sessions the cap revoked, as one array. The
/// parts all read the snapshot taken after the lock, so the eviction counts the sessions of logins
/// that held it before, and not the one it opens; the token's reference to its session is checked
/// at the end of the statement. Built once from the four statements, so their text is not written
/// twice; the plan test checks it on its own. It runs in the function of `postgres_open_session.rs`.
pub static POSTGRES_OPEN_SESSION: LazyLock<String> = LazyLock::new(|| {
    let [clear, evict, session, token] =
        renumber::following([CLEAR_THROTTLE, EVICT_SESSIONS, INSERT_SESSION, INSERT_TOKEN]);
    format!(
        "WITH cleared AS ({clear}), evicted AS ({evict}), opened AS ({session}), \
         token AS ({token}) SELECT ARRAY(SELECT id FROM evicted)"
    )
});

/// The rotations of a batch in one statement (PostgreSQL, see `postgres_batch.rs`), over the rows
/// of arrays `$1`-`$6` (session ids, generations judged, times, idle expiries, sealed tokens, new
/// tokens' hashes). It first locks the batch's sessions that no other transaction holds (`SKIP
/// LOCKED`: it never waits for a row, so it never waits in a circle either), then runs `ROTATE`'s
/// compare-and-swap on those and inserts the new tokens of the generations it made. Rows: the hash
/// of each token inserted (`made`), and the session of each rotation whose row was held elsewhere
/// or not found (`skipped`), to be made on its own. Built once from `ROTATE`, its parameters made
/// the batch's columns (empty, so failing each time it runs, only if `ROTATE` numbered more than
/// six: a unit test builds it).
pub static POSTGRES_ROTATE_ALL: LazyLock<String> = LazyLock::new(|| {
    let columns = [
        "b_now",
        "b_now",
        "b_idle",
        "b_sealed",
        "b_session",
        "b_expected",
    ];
    let each = renumber::substitute(ROTATE, &columns).unwrap_or_default();
    let Some((update, filter)) = each.split_once(" WHERE ") else {
        return String::new();
    };
    format!(
        "WITH batch AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], \
         $4::bigint[], $5::bytea[], $6::bytea[]) \
         AS b (b_session, b_expected, b_now, b_idle, b_sealed, b_hash)), \
         locked AS (SELECT id AS l_id FROM sessions WHERE id IN (SELECT b_session FROM batch) \
         FOR UPDATE SKIP LOCKED), \
         rotated AS ({update} FROM batch JOIN locked ON l_id = b_session WHERE {filter} \
         RETURNING id, generation, b_hash, b_now), \
         made AS (INSERT INTO refresh_tokens (hash, session_id, generation, issued_at) \
         SELECT b_hash, id, generation, b_now FROM rotated RETURNING hash) \
         SELECT hash AS made, NULL::text AS skipped FROM made UNION ALL \
         SELECT NULL, b_session FROM batch WHERE b_session NOT IN (SELECT l_id FROM locked)"
    )
});

/// Statements that find rows which only PostgreSQL runs, by name: planned on PostgreSQL alone (the
/// test of `LOOKUPS`, with the two built of others).
pub const POSTGRES_LOOKUPS: &[(&str, &str)] =
    &[("postgres_throttle_and_user", POSTGRES_THROTTLE_AND_USER)];

/// The statements that need no plan: plain INSERTs find no rows (their unique checks are the
/// primary keys'), nor do those that insert from a JSON array, `PING`, `SQLITE_DATABASE_FILE` and
/// `NOTIFY_REVOCATIONS` read no table, and `KEYS` reads the whole (small) key table on purpose.
pub const NOT_LOOKUPS: &[&str] = &[
    PING,
    SQLITE_DATABASE_FILE,
    CREATE_USER,
    INSERT_THROTTLE,
    INSERT_SESSION,
    INSERT_TOKEN,
    INSERT_REVOCATION,
    NOTIFY_REVOCATIONS,
    SQLITE_INSERT_SESSION_EVENTS,
    POSTGRES_INSERT_SESSION_EVENTS,
    SQLITE_INSERT_SESSION_ACCOUNT_EVENTS,
    POSTGRES_INSERT_SESSION_ACCOUNT_EVENTS,
    INSERT_KEY,
    KEYS,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Each of `ROTATE`'s parameters is a column of the batch, and the `FROM` comes before its
    /// `WHERE`.
    #[test]
    fn the_batched_rotation_is_rotate_over_the_batch() {
        let sql = POSTGRES_ROTATE_ALL.as_str();
        assert!(!sql.contains("$7"), "{sql}");
        for part in [
            "UPDATE sessions SET generation = generation + 1, rotated_at = b_now, \
             last_used_at = b_now, idle_expires_at = b_idle, sealed_token = b_sealed \
             FROM batch JOIN locked ON l_id = b_session WHERE id = b_session \
             AND generation = b_expected AND revoked_at IS NULL RETURNING",
            "SELECT b_hash, id, generation, b_now FROM rotated",
        ] {
            assert!(sql.contains(part), "{part} not in {sql}");
        }
    }

    #[test]
    fn opening_a_session_in_one_statement_binds_the_four_parts_values_in_turn() {
        let open = POSTGRES_OPEN_SESSION.as_str();
        // CLEAR_THROTTLE 1, EVICT_SESSIONS 4, INSERT_SESSION 12, INSERT_TOKEN 4.
        assert!(open.contains("username = $1)"));
        assert!(open.contains("LIMIT $4 OFFSET $5"));
        assert!(open.contains("$17)"), "the session's last value: {open}");
        assert!(open.contains("VALUES ($18, $19, $20, $21)"));
        assert!(!open.contains("$22"));
    }

    /// A statement added to this file without a place in either list would escape the plan test.
    #[test]
    fn every_statement_is_either_planned_or_said_to_need_no_plan() {
        let declared = include_str!("queries.rs")
            .lines()
            .filter(|line| line.starts_with("pub const ") && !line.contains("&["))
            .count();
        assert_eq!(
            declared,
            LOOKUPS.len() + POSTGRES_LOOKUPS.len() + NOT_LOOKUPS.len()
        );
    }
}
