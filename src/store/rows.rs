//! Rows as the tables hold them, for the records whose shape differs from their table's: columns
//! are read by name (derived), then turned into the store's records here, in plain conversions.
//! Records with exactly their table's columns ([`SessionRecord`], [`KeyRecord`]) derive the mapping
//! themselves.
//!
//! [`KeyRecord`]: super::KeyRecord

use super::{FoundRefresh, SessionRecord, UserRecord};
use crate::domain::{
    UnixMs,
    event::AccountEvent,
    revocation::{Revocation, RevocationTarget},
    scope,
    secret::Secret,
    throttle,
};

/// The derive comes from `sqlx-macros` directly (see Cargo.toml), hence the path.
#[derive(sqlx_macros::FromRow)]
pub(super) struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    /// Space-separated.
    scopes: String,
    disabled: bool,
    not_before: UnixMs,
    created_at: UnixMs,
}

impl UserRow {
    /// The row as rusqlite reads it (`login_writes.rs`), by the same column names.
    pub(super) fn from_rusqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get("id")?,
            username: row.get("username")?,
            password_hash: row.get("password_hash")?,
            scopes: row.get("scopes")?,
            disabled: row.get("disabled")?,
            not_before: row.get("not_before")?,
            created_at: row.get("created_at")?,
        })
    }
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            password_hash: Secret::new(row.password_hash),
            scopes: scope::split(&row.scopes),
            disabled: row.disabled,
            not_before: row.not_before,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx_macros::FromRow)]
pub(super) struct ThrottleRow {
    failures: i64,
    window_started_at: UnixMs,
    locked_until: UnixMs,
    lockouts: i64,
}

impl ThrottleRow {
    /// The row as rusqlite reads it (`login_writes.rs`), by the same column names.
    pub(super) fn from_rusqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            failures: row.get("failures")?,
            window_started_at: row.get("window_started_at")?,
            locked_until: row.get("locked_until")?,
            lockouts: row.get("lockouts")?,
        })
    }
}

impl From<ThrottleRow> for throttle::Record {
    fn from(row: ThrottleRow) -> Self {
        // Counts past u32 cannot come from this code; a hand-edited row saturates, not fails.
        Self {
            failures: u32::try_from(row.failures).unwrap_or(u32::MAX),
            window_started_at: row.window_started_at,
            locked_until: row.locked_until,
            lockouts: u32::try_from(row.lockouts).unwrap_or(u32::MAX),
        }
    }
}

/// `POSTGRES_THROTTLE_AND_USER`'s row: a throttle record's columns and a user's, each all NULL when there
/// is none (every one of them is `NOT NULL` in its table).
#[derive(sqlx_macros::FromRow)]
pub(super) struct ThrottleAndUserRow {
    failures: Option<i64>,
    window_started_at: Option<UnixMs>,
    locked_until: Option<UnixMs>,
    lockouts: Option<i64>,
    id: Option<String>,
    username: Option<String>,
    password_hash: Option<String>,
    scopes: Option<String>,
    disabled: Option<bool>,
    not_before: Option<UnixMs>,
    created_at: Option<UnixMs>,
}

impl ThrottleAndUserRow {
    pub(super) fn split(self) -> (Option<throttle::Record>, Option<UserRecord>) {
        let record = match (
            self.failures,
            self.window_started_at,
            self.locked_until,
            self.lockouts,
        ) {
            (Some(failures), Some(window_started_at), Some(locked_until), Some(lockouts)) => {
                Some(ThrottleRow {
                    failures,
                    window_started_at,
                    locked_until,
                    lockouts,
                })
            }
            _ => None,
        };
        let user = match (
            self.id,
            self.username,
            self.password_hash,
            self.scopes,
            self.disabled,
            self.not_before,
            self.created_at,
        ) {
            (
                Some(id),
                Some(username),
                Some(password_hash),
                Some(scopes),
                Some(disabled),
                Some(not_before),
                Some(created_at),
            ) => Some(UserRow {
                id,
                username,
                password_hash,
                scopes,
                disabled,
                not_before,
                created_at,
            }),
            _ => None,
        };
        (record.map(Into::into), user.map(Into::into))
    }
}

/// A refresh token's session, with the generation the token was issued at and the user's scopes.
#[derive(sqlx_macros::FromRow)]
pub(super) struct RefreshRow {
    #[sqlx(flatten)]
    session: SessionRecord,
    token_generation: i64,
    /// Space-separated.
    user_scopes: String,
}

impl From<RefreshRow> for FoundRefresh {
    fn from(row: RefreshRow) -> Self {
        Self {
            session: row.session,
            generation: row.token_generation,
            user_scopes: scope::split(&row.user_scopes),
        }
    }
}

#[derive(sqlx_macros::FromRow)]
pub(super) struct RevocationRow {
    seq: i64,
    /// `session`, `jti` or `user`.
    kind: String,
    target: String,
    /// The cutoff, for `user` only.
    not_before: Option<UnixMs>,
    expires_at: UnixMs,
}

impl TryFrom<RevocationRow> for Revocation {
    type Error = sqlx::Error;

    fn try_from(row: RevocationRow) -> Result<Self, Self::Error> {
        let target = match row.kind.as_str() {
            "session" => RevocationTarget::Session(row.target),
            "jti" => RevocationTarget::Jti(row.target),
            _ => RevocationTarget::User {
                user_id: row.target,
                not_before: row.not_before.ok_or_else(|| {
                    sqlx::Error::Decode(format!("user revocation {} has no cutoff", row.seq).into())
                })?,
            },
        };
        Ok(Self {
            seq: row.seq,
            target,
            expires_at: row.expires_at,
        })
    }
}

/// The feed events written for sessions `ids` by one insert from a JSON array, numbered from
/// `first_seq` in the array's order (`INSERT_SESSION_EVENTS` on either driver).
pub(super) fn session_revocations(
    first_seq: i64,
    ids: &[String],
    expires_at: UnixMs,
) -> Vec<Revocation> {
    (first_seq..)
        .zip(ids)
        .map(|(seq, id)| Revocation {
            seq,
            target: RevocationTarget::Session(id.clone()),
            expires_at,
        })
        .collect()
}

/// How a feed event is stored: its kind, its target and, for a user, the cutoff.
pub(super) fn revocation_columns(
    target: &RevocationTarget,
) -> (&'static str, &str, Option<UnixMs>) {
    match target {
        RevocationTarget::Session(id) => ("session", id, None),
        RevocationTarget::Jti(id) => ("jti", id, None),
        RevocationTarget::User {
            user_id,
            not_before,
        } => ("user", user_id, Some(*not_before)),
    }
}

/// A user with the number of its live sessions (the listing's rows).
#[derive(sqlx_macros::FromRow)]
pub(super) struct UserPageRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub live_sessions: i64,
}

#[derive(sqlx_macros::FromRow)]
pub(super) struct EventRow {
    seq: i64,
    at: UnixMs,
    user_id: String,
    kind: String,
    session_id: String,
    ip: String,
    device: String,
    client_id: String,
    new_device: bool,
    detail: String,
}

impl From<EventRow> for AccountEvent {
    fn from(row: EventRow) -> Self {
        Self {
            seq: row.seq,
            at: row.at,
            user_id: row.user_id,
            kind: row.kind,
            session_id: row.session_id,
            ip: row.ip,
            device: row.device,
            client_id: row.client_id,
            new_device: row.new_device,
            detail: row.detail,
        }
    }
}
