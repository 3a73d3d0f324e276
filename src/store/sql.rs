//! The SQL shared by every backend, written once. The statements are portable (numbered `$n`
//! parameters, `RETURNING`, `ON CONFLICT`), so each backend module only opens its pool, classifies
//! its errors and invokes [`sql_store!`] with its driver types.

macro_rules! session_columns {
    () => {
        "s.id, s.user_id, s.client_id, s.device, s.ip, s.scope, s.created_at, s.last_used_at, \
         s.idle_expires_at, s.absolute_expires_at, s.revoked_at, s.generation, s.rotated_at, \
         s.sealed_token"
    };
}

pub const USER_BY_NAME: &str = "SELECT * FROM users WHERE username = $1";
pub const USER_BY_ID: &str = "SELECT * FROM users WHERE id = $1";
pub const THROTTLE: &str = "SELECT * FROM login_throttle WHERE username = $1";
pub const FIND_REFRESH: &str = concat!(
    "SELECT ",
    session_columns!(),
    ", t.generation AS token_generation FROM refresh_tokens t \
     JOIN sessions s ON s.id = t.session_id WHERE t.hash = $1"
);
/// The compare-and-swap: only the generation that was judged, only while not revoked.
pub const ROTATE: &str = "UPDATE sessions SET generation = generation + 1, rotated_at = $1, \
     last_used_at = $2, idle_expires_at = $3, sealed_token = $4 \
     WHERE id = $5 AND generation = $6 AND revoked_at IS NULL";
pub const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING user_id";
pub const REVOKE_USER_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id";
pub const LIVE_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL \
     AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2 ORDER BY s.created_at DESC"
);
pub const REVOCATIONS_AFTER: &str =
    "SELECT * FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2";
pub const PURGE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE id IN \
     (SELECT id FROM sessions WHERE idle_expires_at < $1 LIMIT $2)";
pub const PURGE_REVOKED_SESSIONS: &str = "DELETE FROM sessions WHERE id IN \
     (SELECT id FROM sessions WHERE revoked_at < $1 LIMIT $2)";
/// Spent tokens only: a session's live token goes with its session, never on its own.
pub const PURGE_TOKENS: &str = "DELETE FROM refresh_tokens WHERE hash IN \
     (SELECT t.hash FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
      WHERE t.issued_at < $1 AND t.generation < s.generation LIMIT $2)";
pub const PURGE_REVOCATIONS: &str = "DELETE FROM revocations WHERE seq IN \
     (SELECT seq FROM revocations WHERE expires_at < $1 LIMIT $2)";
pub const PURGE_THROTTLE: &str = "DELETE FROM login_throttle WHERE username IN \
     (SELECT username FROM login_throttle WHERE window_started_at < $1 AND locked_until < $1 LIMIT $2)";
pub const PURGE_AUDIT: &str = "DELETE FROM audit_events WHERE id IN \
     (SELECT id FROM audit_events WHERE at < $1 LIMIT $2)";

/// The queries on the request path and in housekeeping, by name: each must be an index lookup
/// (a test checks their plans on both backends, binding parameters of the right types).
pub const HOT_QUERIES: &[(&str, &str)] = &[
    ("user_by_name", USER_BY_NAME),
    ("user_by_id", USER_BY_ID),
    ("throttle", THROTTLE),
    ("find_refresh", FIND_REFRESH),
    ("rotate", ROTATE),
    ("revoke_session", REVOKE_SESSION),
    ("revoke_user_sessions", REVOKE_USER_SESSIONS),
    ("live_sessions", LIVE_SESSIONS),
    ("revocations_after", REVOCATIONS_AFTER),
    ("purge_expired_sessions", PURGE_EXPIRED_SESSIONS),
    ("purge_revoked_sessions", PURGE_REVOKED_SESSIONS),
    ("purge_tokens", PURGE_TOKENS),
    ("purge_revocations", PURGE_REVOCATIONS),
    ("purge_throttle", PURGE_THROTTLE),
    ("purge_audit", PURGE_AUDIT),
];

/// The schema, from the backend's `migrations/<backend>/0001_init.sql`, embedded in the binary (the
/// runtime `Migrator` rather than the `migrate!` macro, which would compile the drivers twice).
pub(super) fn migrator(init: &'static str) -> sqlx::migrate::Migrator {
    use sqlx::{
        SqlSafeStr,
        migrate::{Migration, MigrationType, Migrator},
    };
    Migrator::with_migrations(vec![Migration::new(
        1,
        std::borrow::Cow::Borrowed("init"),
        MigrationType::Simple,
        init.into_sql_str(),
        false,
    )])
}

/// Implements [`Store`](super::Store) for `$store` (a struct with a `pool: sqlx::Pool<$db>`), using
/// the `classify(sqlx::Error) -> StoreError` function in scope where it is invoked.
macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty) => {
        use async_trait::async_trait;
        use sqlx::Row as _;

        use $crate::{
            domain::{
                UnixMs,
                revocation::{Reason, Revocation, RevocationTarget},
                scope, throttle,
                types::TokenHash,
            },
            store::{
                KeyRecord, Purge, Rotation, SessionRecord, Store, StoreResult, UserRecord,
                UserRevocation,
            },
        };

        type Tx<'a> = sqlx::Transaction<'a, $db>;

        use $crate::store::sql::{
            FIND_REFRESH, LIVE_SESSIONS, PURGE_AUDIT, PURGE_EXPIRED_SESSIONS, PURGE_REVOCATIONS,
            PURGE_REVOKED_SESSIONS, PURGE_THROTTLE, PURGE_TOKENS, REVOCATIONS_AFTER, REVOKE_SESSION,
            REVOKE_USER_SESSIONS, ROTATE, THROTTLE, USER_BY_ID, USER_BY_NAME,
        };

        fn session(row: &$row) -> Result<SessionRecord, sqlx::Error> {
            Ok(SessionRecord {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                client_id: row.try_get("client_id")?,
                device: row.try_get("device")?,
                ip: row.try_get("ip")?,
                scope: row.try_get("scope")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                idle_expires_at: row.try_get("idle_expires_at")?,
                absolute_expires_at: row.try_get("absolute_expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                generation: row.try_get("generation")?,
                rotated_at: row.try_get("rotated_at")?,
                sealed_token: row.try_get("sealed_token")?,
            })
        }

        fn user(row: &$row) -> Result<UserRecord, sqlx::Error> {
            Ok(UserRecord {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                password_hash: row.try_get("password_hash")?,
                scopes: scope::split(row.try_get("scopes")?),
                disabled: row.try_get("disabled")?,
                not_before: row.try_get("not_before")?,
            })
        }

        fn revocation(row: &$row) -> Result<Revocation, sqlx::Error> {
            let kind: String = row.try_get("kind")?;
            let target: String = row.try_get("target")?;
            let target = match kind.as_str() {
                "session" => RevocationTarget::Session(target),
                "jti" => RevocationTarget::Jti(target),
                _ => RevocationTarget::User { user_id: target, not_before: row.try_get("not_before")? },
            };
            Ok(Revocation { seq: row.try_get("seq")?, target, expires_at: row.try_get("expires_at")? })
        }

        /// Appends a feed event inside `tx`. Taking the next number locks the counter row until
        /// commit, so numbers are handed out in commit order.
        async fn append_event(
            tx: &mut Tx<'_>,
            target: RevocationTarget,
            now: UnixMs,
            expires_at: UnixMs,
        ) -> Result<Revocation, sqlx::Error> {
            let (kind, id, not_before) = match &target {
                RevocationTarget::Session(id) => ("session", id.as_str(), None),
                RevocationTarget::Jti(id) => ("jti", id.as_str(), None),
                RevocationTarget::User { user_id, not_before } => ("user", user_id.as_str(), Some(*not_before)),
            };
            let seq: i64 = sqlx::query_scalar("UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq")
                .fetch_one(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO revocations (seq, kind, target, not_before, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(seq)
            .bind(kind)
            .bind(id)
            .bind(not_before)
            .bind(expires_at)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(Revocation { seq, target, expires_at })
        }

        async fn audit(
            tx: &mut Tx<'_>,
            now: UnixMs,
            reason: Reason,
            user_id: &str,
            session_id: Option<&str>,
        ) -> Result<(), sqlx::Error> {
            sqlx::query("INSERT INTO audit_events (at, kind, user_id, session_id) VALUES ($1, $2, $3, $4)")
                .bind(now)
                .bind(reason.as_str())
                .bind(user_id)
                .bind(session_id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        async fn insert_token(
            tx: &mut Tx<'_>,
            hash: &TokenHash,
            session_id: &str,
            generation: i64,
            issued_at: UnixMs,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO refresh_tokens (hash, session_id, generation, issued_at) VALUES ($1, $2, $3, $4)",
            )
                .bind(&hash.0)
                .bind(session_id)
                .bind(generation)
                .bind(issued_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(classify)?;
                Ok(())
            }

            async fn create_user(&self, u: &UserRecord, now: UnixMs) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO users (id, username, password_hash, scopes, disabled, not_before, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&u.id)
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(scope::join(&u.scopes))
                .bind(u.disabled)
                .bind(u.not_before)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(classify)?;
                Ok(())
            }

            async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
                let row = sqlx::query(USER_BY_NAME)
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.as_ref().map(user).transpose().map_err(classify)
            }

            async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
                let row = sqlx::query(USER_BY_ID)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.as_ref().map(user).transpose().map_err(classify)
            }

            async fn enable_user(&self, user_id: &str) -> StoreResult<()> {
                sqlx::query("UPDATE users SET disabled = FALSE WHERE id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await
                    .map_err(classify)?;
                Ok(())
            }

            async fn throttle(&self, username: &str) -> StoreResult<Option<throttle::Record>> {
                let row = sqlx::query(THROTTLE)
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.map(|r| -> Result<_, sqlx::Error> {
                    Ok(throttle::Record {
                        failures: u32::try_from(r.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
                        window_started_at: r.try_get("window_started_at")?,
                        locked_until: r.try_get("locked_until")?,
                        lockouts: u32::try_from(r.try_get::<i64, _>("lockouts")?).unwrap_or(u32::MAX),
                    })
                })
                .transpose()
                .map_err(classify)
            }

            async fn swap_throttle(
                &self,
                username: &str,
                expected: Option<&throttle::Record>,
                r: &throttle::Record,
            ) -> StoreResult<bool> {
                let query = match expected {
                    None => sqlx::query(
                        "INSERT INTO login_throttle (failures, window_started_at, locked_until, lockouts, username) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING",
                    ),
                    Some(_) => sqlx::query(
                        "UPDATE login_throttle SET failures = $1, window_started_at = $2, locked_until = $3, \
                         lockouts = $4 WHERE username = $5 AND failures = $6 AND window_started_at = $7 \
                         AND locked_until = $8 AND lockouts = $9",
                    ),
                };
                let mut query = query
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
                let swapped = query.execute(&self.pool).await.map_err(classify)?.rows_affected() == 1;
                Ok(swapped)
            }

            async fn clear_throttle(&self, username: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM login_throttle WHERE username = $1")
                    .bind(username)
                    .execute(&self.pool)
                    .await
                    .map_err(classify)?;
                Ok(())
            }

            async fn create_session(
                &self,
                s: &SessionRecord,
                token_hash: &TokenHash,
                password_hash: &str,
            ) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(classify)?;
                // Locks the user's row while the user is as the login found it.
                let unchanged = sqlx::query(
                    "UPDATE users SET not_before = not_before WHERE id = $1 AND password_hash = $2 AND NOT disabled",
                )
                .bind(&s.user_id)
                .bind(password_hash)
                .execute(&mut *tx)
                .await
                .map_err(classify)?
                .rows_affected()
                    == 1;
                if !unchanged {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, client_id, device, ip, scope, created_at, \
                     last_used_at, idle_expires_at, absolute_expires_at, revoked_at, generation, \
                     rotated_at, sealed_token) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, NULL, $12)",
                )
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
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                insert_token(&mut tx, token_hash, &s.id, s.generation, s.created_at).await.map_err(classify)?;
                tx.commit().await.map_err(classify)?;
                Ok(true)
            }

            async fn find_refresh(&self, hash: &TokenHash) -> StoreResult<Option<(SessionRecord, i64)>> {
                let row = sqlx::query(FIND_REFRESH)
                    .bind(&hash.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(classify)?;
                row.map(|r| Ok((session(&r)?, r.try_get("token_generation")?)))
                    .transpose()
                    .map_err(classify)
            }

            async fn rotate(&self, r: &Rotation) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await.map_err(classify)?;
                let swapped = sqlx::query(ROTATE)
                .bind(r.now)
                .bind(r.now)
                .bind(r.idle_expires_at)
                .bind(&r.sealed_token)
                .bind(&r.session_id)
                .bind(r.expected_generation)
                .execute(&mut *tx)
                .await
                .map_err(classify)?
                .rows_affected()
                    == 1;
                if !swapped {
                    return Ok(false);
                }
                insert_token(&mut tx, &r.token_hash, &r.session_id, r.expected_generation + 1, r.now)
                    .await
                    .map_err(classify)?;
                tx.commit().await.map_err(classify)?;
                Ok(true)
            }

            async fn revoke_session(
                &self,
                session_id: &str,
                now: UnixMs,
                expires_at: UnixMs,
                reason: Reason,
            ) -> StoreResult<Option<Revocation>> {
                let mut tx = self.pool.begin().await.map_err(classify)?;
                let user_id: Option<String> = sqlx::query_scalar(REVOKE_SESSION)
                .bind(now)
                .bind(session_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
                let Some(user_id) = user_id else {
                    return Ok(None);
                };
                let target = RevocationTarget::Session(session_id.to_owned());
                let event = append_event(&mut tx, target, now, expires_at).await.map_err(classify)?;
                audit(&mut tx, now, reason, &user_id, Some(session_id)).await.map_err(classify)?;
                tx.commit().await.map_err(classify)?;
                Ok(Some(event))
            }

            async fn revoke_jti(&self, jti: &str, now: UnixMs, expires_at: UnixMs) -> StoreResult<Revocation> {
                let mut tx = self.pool.begin().await.map_err(classify)?;
                let event = append_event(&mut tx, RevocationTarget::Jti(jti.to_owned()), now, expires_at)
                    .await
                    .map_err(classify)?;
                tx.commit().await.map_err(classify)?;
                Ok(event)
            }

            async fn revoke_user(&self, r: &UserRevocation) -> StoreResult<Vec<Revocation>> {
                let mut tx = self.pool.begin().await.map_err(classify)?;
                // First, so that it holds the user's row: logins wait for it (see create_session).
                sqlx::query(
                    "UPDATE users SET not_before = CASE WHEN not_before < $1 THEN $1 ELSE not_before END, \
                     password_hash = COALESCE($2, password_hash), disabled = (disabled OR $3) WHERE id = $4",
                )
                .bind(r.not_before)
                .bind(r.new_password_hash.as_deref())
                .bind(r.disable)
                .bind(&r.user_id)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                let revoked: Vec<String> = sqlx::query_scalar(REVOKE_USER_SESSIONS)
                .bind(r.now)
                .bind(&r.user_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(classify)?;
                let mut events = Vec::with_capacity(revoked.len() + 1);
                for id in revoked {
                    audit(&mut tx, r.now, r.reason, &r.user_id, Some(&id)).await.map_err(classify)?;
                    let target = RevocationTarget::Session(id);
                    events.push(append_event(&mut tx, target, r.now, r.expires_at).await.map_err(classify)?);
                }
                let cutoff = RevocationTarget::User { user_id: r.user_id.clone(), not_before: r.not_before };
                events.push(append_event(&mut tx, cutoff, r.now, r.expires_at).await.map_err(classify)?);
                tx.commit().await.map_err(classify)?;
                Ok(events)
            }

            async fn live_sessions(&self, user_id: &str, now: UnixMs) -> StoreResult<Vec<SessionRecord>> {
                let rows = sqlx::query(LIVE_SESSIONS)
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)?;
                rows.iter().map(session).collect::<Result<_, _>>().map_err(classify)
            }

            async fn count_live_sessions(&self, now: UnixMs) -> StoreResult<i64> {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND idle_expires_at > $1 \
                     AND absolute_expires_at > $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(classify)
            }

            async fn revocations_after(&self, after: i64, limit: i64) -> StoreResult<Vec<Revocation>> {
                let rows = sqlx::query(REVOCATIONS_AFTER)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)?;
                rows.iter().map(revocation).collect::<Result<_, _>>().map_err(classify)
            }

            async fn purge(&self, p: &Purge) -> StoreResult<u64> {
                let mut deleted = 0;
                for (sql, before) in [
                    (PURGE_EXPIRED_SESSIONS, p.sessions_ended_before),
                    (PURGE_REVOKED_SESSIONS, p.sessions_ended_before),
                    (PURGE_TOKENS, p.tokens_issued_before),
                    (PURGE_REVOCATIONS, p.events_expired_before),
                    (PURGE_THROTTLE, p.throttle_idle_before),
                    (PURGE_AUDIT, p.audit_before),
                ] {
                    deleted += sqlx::query(sql)
                        .bind(before)
                        .bind(p.batch)
                        .execute(&self.pool)
                        .await
                        .map_err(classify)?
                        .rows_affected();
                }
                Ok(deleted)
            }

            async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, sealed_private, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&k.kid)
                .bind(&k.alg)
                .bind(&k.sealed_private)
                .bind(k.created_at)
                .execute(&self.pool)
                .await
                .map_err(classify)?;
                Ok(())
            }

            async fn keys(&self) -> StoreResult<Vec<KeyRecord>> {
                let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)?;
                rows.iter()
                    .map(|r| {
                        Ok(KeyRecord {
                            kid: r.try_get("kid")?,
                            alg: r.try_get("alg")?,
                            sealed_private: r.try_get("sealed_private")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(classify)
            }
        }
    };
}

pub(crate) use sql_store;
