//! LogoutAll and ListSessions: what a user (or an admin) does with the sessions of a user.

use tracing::{info, instrument};

use super::{Service, ServiceError, ServiceResult};
use crate::{
    crypto::jwt::AccessClaims,
    domain::{UnixMs, revocation::Reason, scope::ADMIN_SCOPE, to_secs},
    store::UserRevocation,
};

/// A live session as ListSessions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session_id: String,
    pub client_id: String,
    pub device: String,
    pub ip: String,
    pub created_at: UnixMs,
    pub last_used_at: UnixMs,
    pub expires_at: UnixMs,
    pub current: bool,
}

impl Service {
    /// Revokes every session of `user_id` (empty: the caller) and sets the user's cutoff. Returns
    /// how many sessions were revoked.
    #[instrument(skip_all, fields(caller = %caller.sub))]
    pub async fn logout_all(&self, caller: &AccessClaims, user_id: &str) -> ServiceResult<u32> {
        let target = if user_id.is_empty() {
            caller.sub.as_str()
        } else {
            user_id
        };
        let admin = caller.scope.split_whitespace().any(|s| s == ADMIN_SCOPE);
        if target != caller.sub && !admin {
            return Err(ServiceError::NotAllowed);
        }
        if self.store.user_by_id(target).await?.is_none() {
            return Ok(0);
        }
        let revoked = self
            .revoke_user(target, Reason::LogoutAll, None, false)
            .await?;
        info!(user_id = %target, revoked, "logged out everywhere");
        Ok(revoked)
    }

    /// Revokes every live session of a user and cuts off the access tokens issued before now, after
    /// applying a new password hash or a disable in the same transaction. Returns the number of
    /// sessions revoked.
    pub(super) async fn revoke_user(
        &self,
        user_id: &str,
        reason: Reason,
        new_password_hash: Option<String>,
        disable: bool,
    ) -> ServiceResult<u32> {
        let now = self.clock.now();
        // `iat` has whole seconds: the cutoff kills tokens of earlier seconds; tokens of this second
        // issued before now are dead through their revoked sessions, and sessions opened after
        // this call in the same second stay alive.
        let not_before = to_secs(now) * 1000;
        let revocation = UserRevocation {
            user_id: user_id.to_owned(),
            now,
            not_before,
            expires_at: now + self.access_horizon(),
            reason,
            new_password_hash,
            disable,
        };
        let events = self.store.revoke_user(&revocation).await?;
        self.revocations.apply(&events)?;
        Ok(u32::try_from(events.len().saturating_sub(1)).unwrap_or(u32::MAX))
    }

    #[instrument(skip_all, fields(caller = %caller.sub))]
    pub async fn list_sessions(&self, caller: &AccessClaims) -> ServiceResult<Vec<SessionView>> {
        let sessions = self
            .store
            .live_sessions(&caller.sub, self.clock.now())
            .await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == caller.sid,
                expires_at: s.idle_expires_at.min(s.absolute_expires_at),
                session_id: s.id,
                client_id: s.client_id,
                device: s.device,
                ip: s.ip,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
            })
            .collect())
    }
}
