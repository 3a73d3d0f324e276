//! Login: throttle, check the password, open a session.

use tracing::{info, instrument};

use super::{Service, ServiceError, ServiceResult, TokenPair};
use crate::{
    crypto::{jwt, refresh::RefreshToken},
    domain::{
        UnixMs, family, scope, secs_until, throttle, to_secs,
        types::{Password, Username, parse_client_id, parse_device},
    },
    store::{SessionRecord, UserRecord},
};

/// A login as received, before validation. `Debug` leaves the password out.
#[derive(Clone, Default)]
pub struct LoginInput {
    pub username: String,
    pub password: String,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub device: String,
    /// The peer address of the connection.
    pub ip: String,
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("username", &self.username)
            .field("scopes", &self.scopes)
            .field("client_id", &self.client_id)
            .field("device", &self.device)
            .field("ip", &self.ip)
            .finish_non_exhaustive()
    }
}

impl Service {
    #[instrument(skip_all, fields(client_id))]
    pub async fn login(&self, input: LoginInput) -> ServiceResult<TokenPair> {
        let username = Username::parse(&input.username)?;
        let password = Password::parse(input.password)?;
        let client_id = parse_client_id(&input.client_id)?;
        let device = parse_device(&input.device)?;
        tracing::Span::current().record("client_id", client_id.as_str());

        // The attempt is counted as a failure before the password is checked, so that however many
        // arrive at once, at most `max_failures` per window are ever checked; a success clears it.
        self.admit_attempt(&username).await?;
        let user = self.store.user_by_name(username.as_str()).await?;
        let matches = self
            .hasher
            .verify(
                password,
                user.as_ref().map(|u| u.password_hash.expose().clone()),
            )
            .await?;
        let now = self.clock.now();
        let user = match user {
            Some(user) if matches => user,
            _ => {
                metrics::counter!("latchkey_login_failures_total").increment(1);
                return Err(ServiceError::InvalidCredentials);
            }
        };
        self.store.clear_throttle(username.as_str()).await?;
        if user.disabled {
            return Err(ServiceError::AccountDisabled);
        }
        let granted = scope::grant(&user.scopes, &input.scopes);
        let pair = self
            .open_session(&user, &granted, client_id, device, input.ip, now)
            .await?;
        info!(user_id = %user.id, session_id = %pair.session_id, "session opened");
        Ok(pair)
    }

    /// Refuses the attempt while the name is locked; otherwise counts it as a failure (a lost race
    /// with another attempt re-reads and counts again).
    async fn admit_attempt(&self, username: &Username) -> ServiceResult<()> {
        // Each lost race means another attempt was counted; under a flood of them, give up.
        for _ in 0..32 {
            let record = self.store.throttle(username.as_str()).await?;
            let now = self.clock.now();
            if let Some(Err(until)) = record.as_ref().map(|r| throttle::check(r, now)) {
                return Err(ServiceError::TooManyAttempts {
                    retry_after_secs: secs_until(until, now),
                });
            }
            let counted = throttle::fail(&record.unwrap_or_default(), now, &self.settings.throttle);
            if self
                .store
                .swap_throttle(username.as_str(), record.as_ref(), &counted)
                .await?
            {
                return Ok(());
            }
        }
        Err(ServiceError::Overloaded)
    }

    async fn open_session(
        &self,
        user: &UserRecord,
        granted: &[String],
        client_id: String,
        device: String,
        ip: String,
        now: UnixMs,
    ) -> ServiceResult<TokenPair> {
        let opening = family::open(now, &self.settings.lifetimes);
        let token = RefreshToken::generate()?;
        let id = uuid::Uuid::new_v4().to_string();
        let session = SessionRecord {
            sealed_token: self.seal_token(&id, 1, &token)?,
            id,
            user_id: user.id.clone(),
            client_id,
            device,
            ip,
            scope: scope::join(granted),
            created_at: now,
            last_used_at: now,
            idle_expires_at: opening.idle_expires_at,
            absolute_expires_at: opening.absolute_expires_at,
            revoked_at: None,
            generation: 1,
            rotated_at: None,
        };
        if !self
            .store
            .create_session(&session, &token.hash(), user.password_hash.expose())
            .await?
        {
            // The password changed, or the user was disabled, while the password was checked.
            let disabled = self
                .store
                .user_by_id(&user.id)
                .await?
                .is_none_or(|u| u.disabled);
            return Err(if disabled {
                ServiceError::AccountDisabled
            } else {
                ServiceError::InvalidCredentials
            });
        }
        self.issue_pair(&session, &token, now)
    }

    /// The live refresh token of a session, sealed so a retry can get it back; bound to the session
    /// and generation so a sealed token cannot be replayed into another row.
    pub(super) fn seal_token(
        &self,
        session_id: &str,
        generation: i64,
        token: &RefreshToken,
    ) -> ServiceResult<Vec<u8>> {
        Ok(self.token_sealer.seal(
            token.expose().as_bytes(),
            format!("{session_id}/{generation}").as_bytes(),
        )?)
    }

    pub(super) fn unseal_token(&self, session: &SessionRecord) -> ServiceResult<RefreshToken> {
        let context = format!("{}/{}", session.id, session.generation);
        let bytes = self
            .token_sealer
            .open(&session.sealed_token, context.as_bytes())?;
        RefreshToken::from_bytes(bytes)
            .ok_or_else(|| ServiceError::Internal("a sealed refresh token is corrupt".into()))
    }

    /// A fresh access token plus `refresh`, for a session in the state given.
    pub(super) fn issue_pair(
        &self,
        session: &SessionRecord,
        refresh: &RefreshToken,
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
            access_token,
            refresh_token: refresh.expose().to_owned(),
            expires_in: exp - iat,
            refresh_expires_in: secs_until(session.idle_expires_at, now),
            session_id: session.id.clone(),
            scope: session.scope.clone(),
        })
    }
}
