//! Refresh: rotation, retries inside the grace window, and reuse detection.

use tracing::{instrument, warn};

use super::{Service, ServiceError, ServiceResult, TokenPair};
use crate::{
    crypto::refresh::RefreshToken,
    domain::{
        family::{self, Verdict},
        revocation::Reason,
        types::check_token_size,
    },
    store::{Rotation, SessionRecord},
};

/// Rounds of read-and-swap before giving up: a lost swap means another call rotated first, and the
/// next round then sees a retry, so two rounds always suffice; the third is slack.
const MAX_ROUNDS: usize = 3;

impl Service {
    #[instrument(skip_all, fields(session_id))]
    pub async fn refresh(&self, raw: &str) -> ServiceResult<TokenPair> {
        check_token_size(raw).map_err(|_| ServiceError::TokenMalformed)?;
        let presented = RefreshToken::parse(raw).ok_or(ServiceError::TokenMalformed)?;
        let hash = presented.hash();
        for _ in 0..MAX_ROUNDS {
            let (session, generation) = self
                .store
                .find_refresh(&hash)
                .await?
                .ok_or(ServiceError::RefreshTokenInvalid)?;
            tracing::Span::current().record("session_id", session.id.as_str());
            let now = self.clock.now();
            match family::judge(&session.family(), generation, now, &self.settings.lifetimes) {
                Verdict::Rotate {
                    next,
                    idle_expires_at,
                } => {
                    let token = RefreshToken::generate()?;
                    let rotation = Rotation {
                        session_id: session.id.clone(),
                        expected_generation: generation,
                        token_hash: token.hash(),
                        sealed_token: self.seal_token(&session.id, next, &token)?,
                        now,
                        idle_expires_at,
                    };
                    if self.store.rotate(&rotation).await? {
                        let rotated = SessionRecord {
                            generation: next,
                            idle_expires_at,
                            rotated_at: Some(now),
                            ..session
                        };
                        return self.issue_pair(&rotated, &token, now);
                    }
                }
                Verdict::Retry => {
                    let successor = self.unseal_token(&session)?;
                    return self.issue_pair(&session, &successor, now);
                }
                Verdict::Reuse => {
                    self.revoke_for_reuse(&session).await?;
                    return Err(ServiceError::RefreshTokenReused);
                }
                Verdict::Revoked => return Err(ServiceError::RefreshTokenInvalid),
                Verdict::IdleExpired => return Err(ServiceError::RefreshTokenExpired),
                Verdict::SessionExpired => return Err(ServiceError::SessionExpired),
            }
        }
        Err(ServiceError::Internal(
            "refresh kept losing the rotation race".into(),
        ))
    }

    async fn revoke_for_reuse(&self, session: &SessionRecord) -> ServiceResult<()> {
        warn!(session_id = %session.id, user_id = %session.user_id, "refresh token reuse: revoking the session");
        metrics::counter!("latchkey_refresh_reuse_total").increment(1);
        self.revoke_session(&session.id, Reason::Reuse).await
    }

    /// Revokes one session and applies the event here at once.
    pub(super) async fn revoke_session(
        &self,
        session_id: &str,
        reason: Reason,
    ) -> ServiceResult<()> {
        let now = self.clock.now();
        let expires_at = now + self.access_horizon();
        if let Some(event) = self
            .store
            .revoke_session(session_id, now, expires_at, reason)
            .await?
        {
            self.revocations.apply(&[event])?;
        }
        Ok(())
    }

    /// How long a revocation matters to access tokens: the longest an access token issued before it
    /// can live, with the clock leeway.
    pub(super) fn access_horizon(&self) -> i64 {
        self.settings.lifetimes.access_ttl + self.settings.leeway_secs * 1000 + 1000
    }
}
