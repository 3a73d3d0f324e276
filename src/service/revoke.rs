//! Every way sessions end before their time: the Revoke RPC (RFC 7009), LogoutAll, a reused refresh
//! token, and the password changes and disables of user administration. Each revocation is written
//! with its feed event in one transaction, and applied to the cache here at once.

use tracing::{info, instrument, warn};

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::{
    crypto::refresh,
    domain::{
        family::access_token_dead_at,
        revocation::Reason,
        to_secs,
        token::{PresentedToken, RefreshToken},
    },
    store::{SessionRecord, UserRevocation},
};

impl Service {
    /// RFC 7009: revokes what the token names; anything unrecognised changes nothing and is no error.
    #[instrument(skip_all)]
    pub async fn revoke(&self, token: PresentedToken<'_>) -> ServiceResult<()> {
        match token {
            PresentedToken::Refresh(token) => self.revoke_refresh(&token).await,
            PresentedToken::Unrecognised => Ok(()),
            PresentedToken::Access(token) => {
                let Some(claims) = self.verify_signature(token.expose())? else {
                    return Ok(());
                };
                // A token of a session already revoked is dead already: its jti is not written
                // again (each call would add a feed event under the counter lock and wake every
                // subscriber). A jti is only ever written after its session was revoked.
                if !self.revoke_session(&claims.sid, Reason::Revoke).await? {
                    return Ok(());
                }
                let now = self.clock.now();
                let expires_at = access_token_dead_at(claims.exp, self.settings.leeway_secs);
                let event = self.store.revoke_jti(&claims.jti, now, expires_at).await?;
                self.revocations.apply(&[event])
            }
        }
    }

    async fn revoke_refresh(&self, token: &RefreshToken) -> ServiceResult<()> {
        let Some((session, _)) = self.store.find_refresh(&refresh::hash(token)).await? else {
            return Ok(());
        };
        // An ended session has nothing left to revoke: the call changes nothing.
        let ended = self.clock.now() >= session.idle_expires_at.min(session.absolute_expires_at);
        if !ended {
            self.revoke_session(&session.id, Reason::Revoke).await?;
        }
        Ok(())
    }

    /// Revokes every session of `user_id` (empty: the caller) and sets the user's cutoff. Returns
    /// how many sessions were revoked.
    #[instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn logout_all(&self, caller: &Caller, user_id: &str) -> ServiceResult<u32> {
        let target = if user_id.is_empty() {
            caller.user_id.as_str()
        } else {
            user_id
        };
        if target != caller.user_id && !caller.is_admin() {
            return Err(ServiceError::NotAllowed);
        }
        // No user id holds a NUL, which PostgreSQL text cannot even be asked about.
        if target.contains('\0') || self.store.user_by_id(target).await?.is_none() {
            return Ok(0);
        }
        let revoked = self
            .revoke_user(target, Reason::LogoutAll, None, false)
            .await?;
        info!(user_id = %target, revoked, "logged out everywhere");
        Ok(revoked)
    }

    /// A spent refresh token came back: theft. The whole session goes.
    pub(super) async fn revoke_for_reuse(&self, session: &SessionRecord) -> ServiceResult<()> {
        warn!(session_id = %session.id, user_id = %session.user_id, "refresh token reuse: revoking the session");
        metrics::counter!("latchkey_refresh_reuse_total").increment(1);
        self.revoke_session(&session.id, Reason::Reuse).await?;
        Ok(())
    }

    /// Revokes one session and applies the event here at once; `false` when it was revoked
    /// already (nothing is written then).
    async fn revoke_session(&self, session_id: &str, reason: Reason) -> ServiceResult<bool> {
        let now = self.clock.now();
        let expires_at = now + self.access_horizon();
        if let Some(event) = self
            .store
            .revoke_session(session_id, now, expires_at, reason)
            .await?
        {
            self.revocations.apply(&[event])?;
            return Ok(true);
        }
        Ok(false)
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
}
