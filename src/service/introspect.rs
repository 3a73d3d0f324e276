//! Introspect (RFC 7662): whether a token of either kind is active, and what it says. Access
//! tokens are checked like bearers (see `authenticate`), against revocations made anywhere up to
//! [`FRESHNESS`] ago: from memory while the revocation cache keeps up (the feed is followed every
//! 50 ms, and at once on NOTIFY), with a read of the store's feed otherwise. The username comes from
//! memory too, once seen.

use std::{collections::HashMap, sync::RwLock, time::Duration};

use tracing::instrument;

use super::{Service, ServiceResult, error::poisoned};
use crate::{
    crypto::refresh,
    domain::{
        family::{self, Verdict},
        scope, to_secs,
        token::{PresentedToken, RefreshToken},
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
    #[instrument(skip_all)]
    pub async fn introspect(
        &self,
        token: PresentedToken<'_>,
    ) -> ServiceResult<Option<Introspection>> {
        let token = match token {
            PresentedToken::Refresh(token) => return self.introspect_refresh(&token).await,
            PresentedToken::Unrecognised => return Ok(None),
            PresentedToken::Access(token) => token,
        };
        // Only a genuine token is worth a look at the store.
        let Some(claims) = self.verify_signature(token.expose())? else {
            return Ok(None);
        };
        self.revocations
            .recent(self.store.as_ref(), self.clock.now(), FRESHNESS)
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
    async fn introspect_refresh(
        &self,
        token: &RefreshToken,
    ) -> ServiceResult<Option<Introspection>> {
        let Some(found) = self.store.find_refresh(&refresh::hash(token)).await? else {
            return Ok(None);
        };
        let (session, generation) = (found.session, found.generation);
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
            // What its next refresh would grant.
            scope: scope::narrow(&session.scope, &found.user_scopes),
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
        if let Some(name) = self.usernames.get(user_id)? {
            return Ok(name);
        }
        let Some(user) = self.store.user_by_id(user_id).await? else {
            return Ok(String::new());
        };
        self.usernames.insert(user_id, &user.username)?;
        Ok(user.username)
    }
}

/// How old the newest revocation Introspect may miss is: API.md promises that a revocation made
/// through any replica shows in Introspect on every replica within 100 ms.
pub(super) const FRESHNESS: Duration = Duration::from_millis(100);

/// Usernames by user id. A username never changes while its user exists; at most [`USERNAMES`]
/// are kept, and a full cache starts again.
#[derive(Default)]
pub(super) struct Usernames(RwLock<HashMap<String, String>>);

/// A few MiB of names at most.
const USERNAMES: usize = 50_000;

impl Usernames {
    fn get(&self, user_id: &str) -> ServiceResult<Option<String>> {
        Ok(self
            .0
            .read()
            .map_err(poisoned("username cache"))?
            .get(user_id)
            .cloned())
    }

    /// Drops a deleted user's name.
    pub(super) fn forget(&self, user_id: &str) -> ServiceResult<()> {
        self.0
            .write()
            .map_err(poisoned("username cache"))?
            .remove(user_id);
        Ok(())
    }

    fn insert(&self, user_id: &str, username: &str) -> ServiceResult<()> {
        let mut names = self.0.write().map_err(poisoned("username cache"))?;
        if names.len() >= USERNAMES {
            names.clear();
        }
        names.insert(user_id.to_owned(), username.to_owned());
        Ok(())
    }
}
