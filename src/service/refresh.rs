//! Refresh: rotation, retries inside the grace window, and reuse detection. What a presented token
//! means is the domain's (`family::judge`); this applies the verdict, with the store's
//! compare-and-swap making a rotation atomic.

use tracing::instrument;

use super::{Service, ServiceError, ServiceResult, TokenPair};
use crate::{
    crypto::refresh,
    domain::{
        event::{EventKind, NewEvent, Origin},
        family::{self, Verdict},
        scope,
        token::RefreshToken,
    },
    store::{Rotation, SessionRecord},
};

/// Rounds of read-and-swap before giving up: a lost swap means another call rotated first, and the
/// next round then sees a retry, so two rounds always suffice; the third is slack.
const MAX_ROUNDS: usize = 3;

impl Service {
    /// `ip`: the caller's address; a session refreshed from another address than it was opened
    /// from records `refresh_ip_changed`.
    #[instrument(skip_all, fields(session_id))]
    pub async fn refresh(&self, presented: RefreshToken, ip: String) -> ServiceResult<TokenPair> {
        let hash = refresh::hash(&presented);
        for _ in 0..MAX_ROUNDS {
            let found = self
                .store
                .find_refresh(&hash)
                .await?
                .ok_or(ServiceError::RefreshTokenInvalid)?;
            let generation = found.generation;
            // A refresh never grants a scope the user no longer holds.
            let session = SessionRecord {
                scope: scope::narrow(&found.session.scope, &found.user_scopes),
                ..found.session
            };
            tracing::Span::current().record("session_id", session.id.as_str());
            let now = self.clock.now();
            match family::judge(&session.family(), generation, now, &self.settings.lifetimes) {
                Verdict::Rotate { next } => {
                    let token = refresh::generate()?;
                    let rotation = Rotation {
                        session_id: session.id.clone(),
                        expected_generation: generation,
                        token_hash: refresh::hash(&token),
                        sealed_token: self.seal_for_retries(
                            &session.id,
                            next.generation,
                            &token,
                        )?,
                        now,
                        idle_expires_at: next.idle_expires_at,
                        event: moved(&session, &ip),
                    };
                    if self.store.rotate(&rotation).await? {
                        if rotation.event.is_some() {
                            self.events.nudge();
                        }
                        let rotated = SessionRecord {
                            generation: next.generation,
                            idle_expires_at: next.idle_expires_at,
                            rotated_at: next.rotated_at,
                            ..session
                        };
                        return self.issue_pair(&rotated, token, now);
                    }
                }
                Verdict::Retry => {
                    if let Some(successor) = self.unseal_token(&session)? {
                        return self.issue_pair(&session, successor, now);
                    }
                    // Erased: the window has passed by the clock of the replica that erased it.
                    self.revoke_for_reuse(&session, ip).await?;
                    return Err(ServiceError::RefreshTokenReused);
                }
                Verdict::Reuse => {
                    self.revoke_for_reuse(&session, ip).await?;
                    return Err(ServiceError::RefreshTokenReused);
                }
                Verdict::Revoked => return Err(ServiceError::RefreshTokenInvalid),
                Verdict::IdleExpired => return Err(ServiceError::RefreshTokenExpired),
                Verdict::SessionExpired => return Err(ServiceError::SessionExpired),
            }
        }
        Err(ServiceError::internal(
            "refresh kept losing the rotation race",
        ))
    }
}

/// `refresh_ip_changed` when the session is refreshed from another address than it was opened
/// from (an unknown address, empty, says nothing).
fn moved(session: &SessionRecord, ip: &str) -> Option<NewEvent> {
    if ip.is_empty() || ip == session.ip {
        return None;
    }
    let origin = Origin {
        ip: ip.to_owned(),
        device: session.device.clone(),
        client_id: session.client_id.clone(),
        session_id: session.id.clone(),
    };
    let detail = format!("opened from {}", session.ip);
    Some(NewEvent::new(&session.user_id, EventKind::RefreshIpChanged, origin).with_detail(detail))
}
