//! Login: throttle, check the password, open a session.

use tracing::{info, instrument};

use super::{Service, ServiceError, ServiceResult, TokenPair};
use crate::{
    crypto::refresh,
    domain::{
        event::{EventKind, KNOWN_DEVICE_WINDOW, NewEvent, Origin},
        family, scope, secs_until, throttle,
        types::{ClientId, Device, Password, Username},
    },
    store::{Attempt, NewSession, SessionRecord, UserRecord},
};

/// A login, validated at the edge. `Debug` leaves the password out (see [`Password`]).
#[derive(Debug)]
pub struct LoginCommand {
    pub username: Username,
    pub password: Password,
    pub client_id: ClientId,
    pub device: Device,
    /// The scopes asked for; none asks for every scope the user holds.
    pub scopes: Vec<String>,
    /// The peer address of the connection.
    pub ip: String,
}

impl Service {
    #[instrument(skip_all, fields(client_id = command.client_id.as_str()))]
    pub async fn login(&self, command: LoginCommand) -> ServiceResult<TokenPair> {
        let LoginCommand {
            username,
            password,
            client_id,
            device,
            scopes,
            ip,
        } = command;
        let now = self.clock.now();
        if let Err(until) = self.addresses.check(&ip, now) {
            return Err(ServiceError::TooManyAttempts {
                retry_after_secs: secs_until(until, now),
            });
        }
        // A place in the hashing queue before the store is touched: a login turned away as
        // overloaded has written nothing.
        let admission = self.hasher.admit()?;
        // The attempt is counted as a failure before the password is checked, so that however many
        // arrive at once, at most `max_failures` per window are ever checked; a success clears it.
        let (counted, user) = self.admit_attempt(&username).await?;
        let verdict = admission
            .check(
                password,
                user.as_ref().map(|u| u.password_hash.expose().clone()),
            )
            .await?;
        let user = match user {
            Some(user) if verdict.matches => user,
            user => {
                metrics::counter!("latchkey_login_failures_total").increment(1);
                self.addresses.fail(&ip, self.clock.now());
                if let Some(user) = user {
                    let origin = Origin {
                        ip,
                        device: device.into_string(),
                        client_id: client_id.into_string(),
                        session_id: String::new(),
                    };
                    self.record_failure(&user.id, origin, &counted).await?;
                }
                return Err(ServiceError::InvalidCredentials);
            }
        };
        if user.disabled {
            self.store.clear_throttle(&user.username).await?;
            return Err(ServiceError::AccountDisabled);
        }
        let granted = scope::grant(&user.scopes, &scopes);
        let rehashed = verdict.rehashed.as_ref().map(|h| h.expose().as_str());
        let pair = self
            .open_session(&user, rehashed, &granted, client_id, device, ip)
            .await?;
        info!(user_id = %user.id, session_id = %pair.session_id, "session opened");
        Ok(pair)
    }

    /// A wrong password for a user that exists: `login_failed`, and `locked_out` when counting it
    /// locked the name (`counted`: the throttle record with it). Unknown names leave no trace, so
    /// a flood of random names cannot grow the events table.
    pub(super) async fn record_failure(
        &self,
        user_id: &str,
        origin: Origin,
        counted: &throttle::Record,
    ) -> ServiceResult<()> {
        let now = self.clock.now();
        let mut events = vec![NewEvent::new(
            user_id,
            EventKind::LoginFailed,
            origin.clone(),
        )];
        if throttle::check(counted, now).is_err() {
            let until = format!("locked for {} s", secs_until(counted.locked_until, now));
            events.push(NewEvent::new(user_id, EventKind::LockedOut, origin).with_detail(until));
        }
        self.store.record_events(&events, now).await?;
        self.events.nudge();
        Ok(())
    }

    /// Refuses the attempt while the name is locked; otherwise counts it as a failure (a lost race
    /// with another attempt re-reads and counts again) and returns the record with it, and the
    /// user of that name.
    pub(super) async fn admit_attempt(
        &self,
        username: &Username,
    ) -> ServiceResult<(throttle::Record, Option<UserRecord>)> {
        // Each lost race means another attempt was counted; under a flood of them, give up.
        for _ in 0..32 {
            let now = self.clock.now();
            let policy = &self.settings.throttle;
            match self
                .store
                .count_attempt(username.as_str(), now, policy)
                .await?
            {
                Attempt::Counted { record, user } => return Ok((record, user)),
                Attempt::Locked(until) => {
                    return Err(ServiceError::TooManyAttempts {
                        retry_after_secs: secs_until(until, now),
                    });
                }
                Attempt::Raced => {}
            }
        }
        Err(ServiceError::Overloaded)
    }

    /// Opens the session of a login whose password matched `user`'s hash (`rehashed`: that
    /// password hashed again, to be stored in the same step), and clears the attempt counted
    /// against the name: in the same step, or apart when the session is refused.
    async fn open_session(
        &self,
        user: &UserRecord,
        rehashed: Option<&str>,
        granted: &[String],
        client_id: ClientId,
        device: Device,
        ip: String,
    ) -> ServiceResult<TokenPair> {
        let now = self.clock.now();
        let opening = family::open(now, &self.settings.lifetimes);
        let token = refresh::generate()?;
        let id = uuid::Uuid::new_v4().to_string();
        let session = SessionRecord {
            // No retry can ask for the first token again: only a rotation's successor is kept.
            sealed_token: Vec::new(),
            id,
            user_id: user.id.clone(),
            client_id: client_id.into_string(),
            device: device.into_string(),
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
        let origin = Origin {
            ip: session.ip.clone(),
            device: session.device.clone(),
            client_id: session.client_id.clone(),
            session_id: session.id.clone(),
        };
        let event = NewEvent {
            new_device_since: Some(now - KNOWN_DEVICE_WINDOW),
            ..NewEvent::new(&user.id, EventKind::Login, origin)
        };
        let new = NewSession {
            session: &session,
            token_hash: &refresh::hash(&token),
            username: &user.username,
            checked_hash: user.password_hash.expose(),
            rehashed,
            max_live_sessions: self.settings.max_sessions_per_user,
            events_expire_at: now + self.access_horizon(),
            event: &event,
        };
        let Some(evicted) = self.store.create_session(&new).await? else {
            self.store.clear_throttle(&user.username).await?;
            return Err(self.refusal(&user.id).await);
        };
        self.events.nudge();
        if !evicted.is_empty() {
            info!(user_id = %user.id, evicted = evicted.len(), "session cap reached: least recently used revoked");
            self.revocations.apply(&evicted)?;
        }
        self.issue_pair(&session, token, now)
    }

    /// Why the session of a login whose password matched was refused: the password changed, or
    /// the user was disabled, while the password was checked.
    async fn refusal(&self, user_id: &str) -> ServiceError {
        match self.store.user_by_id(user_id).await {
            Err(e) => e.into(),
            Ok(user) if user.as_ref().is_none_or(|u| u.disabled) => ServiceError::AccountDisabled,
            Ok(_) => ServiceError::InvalidCredentials,
        }
    }
}
