//! What Login and Refresh answer with: a fresh access token and the session's live refresh token.
//! A rotation's new token is also kept sealed in the session row for the grace window, so that a
//! retry of the token it replaced can be answered with that same token again.

use super::{Service, ServiceError, ServiceResult};
use crate::{
    crypto::jwt,
    domain::{UnixMs, secret::Secret, secs_until, to_secs, token::RefreshToken},
    store::SessionRecord,
};

/// The answer to Login and Refresh. The tokens are `Secret`s: `Debug` never shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: Secret<String>,
    pub refresh_token: Secret<String>,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub session_id: String,
    pub scope: String,
}

impl Service {
    /// A fresh access token plus `refresh`, for a session in the state given.
    pub(super) fn issue_pair(
        &self,
        session: &SessionRecord,
        refresh: RefreshToken,
        now: UnixMs,
    ) -> ServiceResult<TokenPair> {
        let iat = to_secs(now);
        // Never outlive the session.
        let exp = (iat + self.settings.lifetimes.access_ttl / 1000)
            .min(to_secs(session.absolute_expires_at));
        let claims = jwt::AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: session.user_id.clone(),
            aud: self.settings.audience.clone(),
            exp,
            iat,
            nbf: iat,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: session.id.clone(),
            scope: session.scope.clone(),
            client_id: session.client_id.clone(),
        };
        let access_token = jwt::sign(&claims, self.keys.active()?.as_ref())?;
        Ok(TokenPair {
            access_token: Secret::new(access_token),
            refresh_token: refresh.into_secret(),
            expires_in: exp - iat,
            refresh_expires_in: secs_until(session.idle_expires_at, now),
            session_id: session.id.clone(),
            scope: session.scope.clone(),
        })
    }

    /// A rotation's new token, sealed so that a retry of the token it replaces can get it back;
    /// bound to the session and generation so a sealed token cannot be replayed into another row.
    /// Empty when retries are disabled: nothing may ask for it then.
    pub(super) fn seal_for_retries(
        &self,
        session_id: &str,
        generation: i64,
        token: &RefreshToken,
    ) -> ServiceResult<Vec<u8>> {
        if self.settings.lifetimes.reuse_grace == 0 {
            return Ok(Vec::new());
        }
        Ok(self.token_sealer.seal(
            token.expose().as_bytes(),
            format!("{session_id}/{generation}").as_bytes(),
        )?)
    }

    /// The session's live token as sealed for retries; `None` once housekeeping erased it.
    pub(super) fn unseal_token(
        &self,
        session: &SessionRecord,
    ) -> ServiceResult<Option<RefreshToken>> {
        if session.sealed_token.is_empty() {
            return Ok(None);
        }
        let context = format!("{}/{}", session.id, session.generation);
        let bytes = self
            .token_sealer
            .open(&session.sealed_token, context.as_bytes())?;
        let token = RefreshToken::from_bytes(bytes)
            .map_err(|_| ServiceError::internal("a sealed refresh token is corrupt"))?;
        Ok(Some(token))
    }
}
