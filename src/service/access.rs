//! Checking tokens: bearer authentication, Introspect (RFC 7662) and Revoke (RFC 7009). Access
//! tokens are checked without the database: signature against the keys in memory, revocation
//! against the cache.

use tracing::instrument;

use super::{Service, ServiceError, ServiceResult};
use crate::{
    crypto::{
        jwt::{self, AccessClaims},
        refresh::RefreshToken,
    },
    domain::{
        family::{self, Verdict},
        revocation::Reason,
        to_secs,
        types::{InputError, check_token_size},
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// What Introspect says of an active token (an inactive one is just `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    pub kind: TokenKind,
    pub sub: String,
    pub username: String,
    pub session_id: String,
    pub scope: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub iss: String,
    pub aud: Vec<String>,
}

impl Service {
    /// The claims of `token` if it is a genuine access token of ours, in time, and its signing key
    /// is trusted. Says nothing about revocation.
    fn verify_signature(&self, token: &str) -> ServiceResult<Option<AccessClaims>> {
        let Ok(kid) = jwt::key_id(token) else {
            return Ok(None);
        };
        let Some(key) = self.keys.trusted(&kid)? else {
            return Ok(None);
        };
        Ok(jwt::verify(token, &key, &self.expectations, to_secs(self.clock.now())).ok())
    }

    /// The claims of an active access token: genuine, in time and not revoked. `Ok(None)` when it is
    /// not; an error only when activity cannot be established (stale revocation state).
    pub fn active_access(&self, token: &str) -> ServiceResult<Option<AccessClaims>> {
        let Some(claims) = self.verify_signature(token)? else {
            return Ok(None);
        };
        self.revocations.check_fresh()?;
        Ok((!self.revocations.is_revoked(&claims)?).then_some(claims))
    }

    /// The caller behind an `authorization: Bearer` value.
    pub fn authenticate(&self, bearer: Option<&str>) -> ServiceResult<AccessClaims> {
        let token = bearer.ok_or(ServiceError::AccessTokenInvalid)?;
        if check_token_size(token).is_err() {
            return Err(ServiceError::AccessTokenInvalid);
        }
        self.active_access(token)?
            .ok_or(ServiceError::AccessTokenInvalid)
    }

    #[instrument(skip_all)]
    pub async fn introspect(&self, token: &str) -> ServiceResult<Option<Introspection>> {
        check_token_size(token).map_err(|_| ServiceError::TokenMalformed)?;
        if RefreshToken::looks_like(token) {
            return self.introspect_refresh(token).await;
        }
        // Only a genuine token is worth a look at the store.
        let Some(claims) = self.verify_signature(token)? else {
            return Ok(None);
        };
        // Introspect is the authoritative check: catch up with revocations made anywhere first.
        self.revocations
            .catch_up(self.store.as_ref(), self.clock.now())
            .await?;
        if self.revocations.is_revoked(&claims)? {
            return Ok(None);
        }
        let username = self.username_of(&claims.sub).await?;
        Ok(Some(Introspection {
            kind: TokenKind::Access,
            sub: claims.sub,
            username,
            session_id: claims.sid,
            scope: claims.scope,
            client_id: claims.client_id,
            exp: claims.exp,
            iat: claims.iat,
            nbf: claims.nbf,
            jti: claims.jti,
            iss: claims.iss,
            aud: vec![claims.aud],
        }))
    }

    /// A refresh token is active while it is its session's live token; looking at a spent one is
    /// not reuse.
    async fn introspect_refresh(&self, token: &str) -> ServiceResult<Option<Introspection>> {
        let Some(token) = RefreshToken::parse(token) else {
            return Ok(None);
        };
        let Some((session, generation)) = self.store.find_refresh(&token.hash()).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if !matches!(
            family::judge(&session.family(), generation, now, &self.settings.lifetimes),
            Verdict::Rotate { .. }
        ) {
            return Ok(None);
        }
        let username = self.username_of(&session.user_id).await?;
        let issued = session.rotated_at.unwrap_or(session.created_at);
        Ok(Some(Introspection {
            kind: TokenKind::Refresh,
            sub: session.user_id,
            username,
            session_id: session.id,
            scope: session.scope,
            client_id: session.client_id,
            exp: to_secs(session.idle_expires_at),
            iat: to_secs(issued),
            nbf: to_secs(issued),
            jti: String::new(),
            iss: self.settings.issuer.clone(),
            aud: Vec::new(),
        }))
    }

    /// The username for Introspect's answer (empty if the user is gone).
    async fn username_of(&self, user_id: &str) -> ServiceResult<String> {
        Ok(self
            .store
            .user_by_id(user_id)
            .await?
            .map(|u| u.username)
            .unwrap_or_default())
    }

    /// RFC 7009: revokes what the token names; anything unrecognised changes nothing and is no error.
    #[instrument(skip_all)]
    pub async fn revoke(&self, token: &str) -> ServiceResult<()> {
        if token.is_empty() {
            return Err(InputError::Missing("token").into());
        }
        check_token_size(token).map_err(|_| ServiceError::TokenMalformed)?;
        if let Some(refresh) = RefreshToken::parse(token) {
            if let Some((session, _)) = self.store.find_refresh(&refresh.hash()).await? {
                // An ended session has nothing left to revoke: the call changes nothing.
                let ended =
                    self.clock.now() >= session.idle_expires_at.min(session.absolute_expires_at);
                if !ended {
                    self.revoke_session(&session.id, Reason::Revoke).await?;
                }
            }
            return Ok(());
        }
        let Some(claims) = self.verify_signature(token)? else {
            return Ok(());
        };
        self.revoke_session(&claims.sid, Reason::Revoke).await?;
        let now = self.clock.now();
        let expires_at = (claims.exp + self.settings.leeway_secs + 1) * 1000;
        let event = self.store.revoke_jti(&claims.jti, now, expires_at).await?;
        self.revocations.apply(&[event])?;
        Ok(())
    }
}
