//! Every way sessions end before their time: the Revoke RPC (RFC 7009), LogoutAll, a reused refresh
//! token, and the password changes and disables of user administration. Each revocation is written
//! with its feed event in one transaction, and applied to the cache here at once.

use tracing::{info, instrument, warn};

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::{
    crypto::refresh,
    domain::{
        event::{EventKind, NewEvent, Origin},
        family::access_token_dead_at,
        revocation::{Reason, RevocationTarget},
        to_secs,
        token::{PresentedToken, RefreshToken},
    },
    store::{SessionRecord, UserRevocation},
};

impl Service {
    /// RFC 7009: revokes what the token names; anything unrecognised changes nothing and is no error.
    /// `ip`: the caller's address, for the account event.
    #[instrument(skip_all)]
    pub async fn revoke(&self, token: PresentedToken<'_>, ip: String) -> ServiceResult<()> {
        match token {
            PresentedToken::Refresh(token) => self.revoke_refresh(&token, ip).await,
            PresentedToken::Unrecognised => Ok(()),
            PresentedToken::Access(token) => {
                let Some(claims) = self.verify_signature(token.expose())? else {
                    return Ok(());
                };
                // A token of a session already revoked is dead already: its jti is not written
                // again (each call would add a feed event under the counter lock and wake every
                // subscriber). A jti is only ever written after its session was revoked.
                let origin = Origin {
                    ip,
                    client_id: claims.client_id.clone(),
                    session_id: claims.sid.clone(),
                    ..Origin::default()
                };
                if !self
                    .revoke_session(&claims.sid, Reason::Revoke, &origin)
                    .await?
                {
                    return Ok(());
                }
                let now = self.clock.now();
                let expires_at = access_token_dead_at(claims.exp, self.settings.leeway_secs);
                let event = self.store.revoke_jti(&claims.jti, now, expires_at).await?;
                self.revocations.apply(&[event])
            }
        }
    }

    async fn revoke_refresh(&self, token: &RefreshToken, ip: String) -> ServiceResult<()> {
        let Some(found) = self.store.find_refresh(&refresh::hash(token)).await? else {
            return Ok(());
        };
        let session = found.session;
        // An ended session has nothing left to revoke: the call changes nothing.
        let ended = self.clock.now() >= session.idle_expires_at.min(session.absolute_expires_at);
        if !ended {
            let origin = session_origin(&session, ip);
            self.revoke_session(&session.id, Reason::Revoke, &origin)
                .await?;
        }
        Ok(())
    }

    /// Revokes every session of `user_id` (empty: the caller) and sets the user's cutoff. Returns
    /// how many sessions were revoked. `ip`: the caller's address, for the account event.
    #[instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn logout_all(
        &self,
        caller: &Caller,
        user_id: &str,
        ip: String,
    ) -> ServiceResult<u32> {
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
        let origin = Origin {
            ip,
            session_id: caller.session_id.clone(),
            ..Origin::default()
        };
        let mut event = NewEvent::new(target, EventKind::LogoutAll, origin);
        if target != caller.user_id {
            event.detail = format!("by admin {}", caller.user_id);
        }
        let revoked = self.revoke_user(target, event, None, false).await?;
        info!(user_id = %target, revoked, "logged out everywhere");
        Ok(revoked)
    }

    /// A spent refresh token came back (from `ip`): theft. The whole session goes.
    pub(super) async fn revoke_for_reuse(
        &self,
        session: &SessionRecord,
        ip: String,
    ) -> ServiceResult<()> {
        warn!(session_id = %session.id, user_id = %session.user_id, "refresh token reuse: revoking the session");
        metrics::counter!("latchkey_refresh_reuse_total").increment(1);
        let origin = session_origin(session, ip);
        self.revoke_session(&session.id, Reason::Reuse, &origin)
            .await?;
        Ok(())
    }

    /// Revokes one session and applies the event here at once; `false` when it was revoked
    /// already (nothing is written then).
    async fn revoke_session(
        &self,
        session_id: &str,
        reason: Reason,
        origin: &Origin,
    ) -> ServiceResult<bool> {
        let now = self.clock.now();
        let expires_at = now + self.access_horizon();
        if let Some(event) = self
            .store
            .revoke_session(session_id, now, expires_at, reason, origin)
            .await?
        {
            self.revocations.apply(&[event])?;
            self.events.nudge();
            return Ok(true);
        }
        Ok(false)
    }

    /// Revokes every live session of a user and cuts off the access tokens issued before now, after
    /// applying a new password hash or a disable in the same transaction, with `event`. Returns the
    /// number of sessions revoked.
    pub(super) async fn revoke_user(
        &self,
        user_id: &str,
        event: NewEvent,
        new_password_hash: Option<String>,
        disable: bool,
    ) -> ServiceResult<u32> {
        let revocation = UserRevocation {
            new_password_hash,
            disable,
            ..self.user_revocation(user_id, event)
        };
        self.end_sessions(&revocation).await
    }

    /// Revokes every session of a user as `revoke_user` does, then deletes the user.
    pub(super) async fn remove_user(&self, user_id: &str, event: NewEvent) -> ServiceResult<u32> {
        let revocation = UserRevocation {
            delete: true,
            ..self.user_revocation(user_id, event)
        };
        self.end_sessions(&revocation).await
    }

    /// Changes the password and revokes every session of the user but `keep`, with no cutoff, so
    /// that the kept session's tokens stay good (the others die with their sessions).
    pub(super) async fn revoke_other_sessions(
        &self,
        user_id: &str,
        keep: &str,
        event: NewEvent,
        new_password_hash: String,
    ) -> ServiceResult<u32> {
        let revocation = UserRevocation {
            new_password_hash: Some(new_password_hash),
            keep_session: Some(keep.to_owned()),
            ..self.user_revocation(user_id, event)
        };
        self.end_sessions(&revocation).await
    }

    /// A revocation of every session of the user, with a cutoff at now and nothing else changed.
    fn user_revocation(&self, user_id: &str, event: NewEvent) -> UserRevocation {
        let now = self.clock.now();
        // `iat` has whole seconds: the cutoff kills tokens of earlier seconds; tokens of this second
        // issued before now are dead through their revoked sessions, and sessions opened after
        // this call in the same second stay alive.
        UserRevocation {
            user_id: user_id.to_owned(),
            now,
            not_before: to_secs(now) * 1000,
            expires_at: now + self.access_horizon(),
            event,
            new_password_hash: None,
            disable: false,
            delete: false,
            keep_session: None,
        }
    }

    async fn end_sessions(&self, revocation: &UserRevocation) -> ServiceResult<u32> {
        let events = self.store.revoke_user(revocation).await?;
        self.revocations.apply(&events)?;
        self.events.nudge();
        let sessions = events
            .iter()
            .filter(|e| matches!(e.target, RevocationTarget::Session(_)))
            .count();
        Ok(u32::try_from(sessions).unwrap_or(u32::MAX))
    }
}

/// A session's revocation as its account event tells it: the session's client and device, from
/// the caller's address.
fn session_origin(session: &SessionRecord, ip: String) -> Origin {
    Origin {
        ip,
        device: session.device.clone(),
        client_id: session.client_id.clone(),
        session_id: session.id.clone(),
    }
}
