//! Who is calling: an access token checked without the database, its signature against the keys in
//! memory (once per token: see `verified`) and its revocation against the cache. This is the hot
//! path of ext_authz and of every RPC that needs a caller.

use super::{Service, ServiceError, ServiceResult, verified::Verified};
use crate::{
    crypto::jwt::{self, AccessClaims},
    domain::{scope::ADMIN_SCOPE, to_secs},
};

/// The caller behind an active access token: what the use cases need to authorise a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub session_id: String,
    /// The scopes granted, space-separated as in the token.
    pub scope: String,
}

impl Caller {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }

    /// Whether the caller may act on other users.
    pub fn is_admin(&self) -> bool {
        self.scopes().any(|s| s == ADMIN_SCOPE)
    }
}

impl From<AccessClaims> for Caller {
    fn from(claims: AccessClaims) -> Self {
        Self {
            user_id: claims.sub,
            session_id: claims.sid,
            scope: claims.scope,
        }
    }
}

impl Service {
    /// The caller behind an access token if it is active: genuine, in time and not revoked.
    /// `Ok(None)` when it is not; an error only when activity cannot be established (stale
    /// revocation state).
    pub fn check_access(&self, token: &str) -> ServiceResult<Option<Caller>> {
        let Some(claims) = self.verify_signature(token)? else {
            return Ok(None);
        };
        self.revocations.check_fresh()?;
        Ok((!self.revocations.is_revoked(&claims)?).then(|| claims.into()))
    }

    /// The caller behind an `authorization: Bearer` token; none, or an inactive one, is
    /// ACCESS_TOKEN_INVALID.
    pub fn authenticate(&self, bearer: Option<&str>) -> ServiceResult<Caller> {
        let token = bearer.ok_or(ServiceError::AccessTokenInvalid)?;
        self.check_access(token)?
            .ok_or(ServiceError::AccessTokenInvalid)
    }

    /// The claims of `token` if it is a genuine access token of ours, in time, and its signing key
    /// is trusted. Says nothing about revocation. A token verified before is not checked again:
    /// only its time and its key's trust are.
    pub(super) fn verify_signature(&self, token: &str) -> ServiceResult<Option<AccessClaims>> {
        let now = to_secs(self.clock.now());
        let fingerprint = jwt::fingerprint(token);
        if let Some(seen) = self.verified.get(&fingerprint)? {
            let trusted = self.keys.trusted(&seen.kid)?.is_some();
            let in_time = jwt::in_time(&seen.claims, &self.expectations, now).is_ok();
            return Ok((trusted && in_time).then_some(seen.claims));
        }
        let Ok(kid) = jwt::key_id(token) else {
            return Ok(None);
        };
        let Some(key) = self.keys.trusted(&kid)? else {
            return Ok(None);
        };
        let Ok(claims) = jwt::verify(token, &key, &self.expectations, now) else {
            return Ok(None);
        };
        let seen = Verified {
            kid,
            claims: claims.clone(),
        };
        self.verified.insert(fingerprint, seen, now)?;
        Ok(Some(claims))
    }
}
