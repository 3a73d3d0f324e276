//! Between the wire and the service: requests parsed into the service's commands and types, answers
//! turned back into messages. Errors in parsing are the service's own (`ServiceError`), so that
//! `status` maps them like any other.

use tonic::Request;

use super::pb;
use crate::{
    domain::{
        event::AccountEvent,
        revocation::{Revocation, RevocationTarget},
        to_secs,
        types::{ClientId, Device, InputError, Password, Username},
    },
    service::{
        FeedItem, Introspection, KeyInfo, LoginCommand, SessionView, TokenKind, TokenPair, UserView,
    },
};

/// From the request rather than the message: the peer address is the connection's.
impl TryFrom<Request<pb::LoginRequest>> for LoginCommand {
    type Error = InputError;

    fn try_from(request: Request<pb::LoginRequest>) -> Result<Self, InputError> {
        let ip = super::peer::ip(&request);
        let r = request.into_inner();
        Ok(Self {
            username: Username::parse(&r.username)?,
            password: Password::parse(r.password)?,
            client_id: ClientId::parse(r.client_id)?,
            device: Device::parse(r.device)?,
            scopes: r.scopes,
            ip,
        })
    }
}

pub fn token_response(pair: TokenPair) -> pb::TokenResponse {
    pb::TokenResponse {
        access_token: pair.access_token.into_inner(),
        refresh_token: pair.refresh_token.into_inner(),
        token_type: "Bearer".into(),
        expires_in: pair.expires_in,
        refresh_expires_in: pair.refresh_expires_in,
        session_id: pair.session_id,
        scope: pair.scope,
    }
}

pub fn introspection(found: Option<Introspection>) -> pb::IntrospectResponse {
    let Some(i) = found else {
        return pb::IntrospectResponse::default();
    };
    pb::IntrospectResponse {
        active: true,
        token_type: match i.kind {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        }
        .into(),
        sub: i.sub,
        username: i.username,
        session_id: i.session_id,
        scope: i.scope,
        client_id: i.client_id,
        exp: i.exp,
        iat: i.iat,
        nbf: i.nbf,
        jti: i.jti,
        iss: i.iss,
        aud: i.aud,
    }
}

pub fn session(s: SessionView) -> pb::Session {
    pb::Session {
        session_id: s.session_id,
        client_id: s.client_id,
        device: s.device,
        ip: s.ip,
        created_at: to_secs(s.created_at),
        last_used_at: to_secs(s.last_used_at),
        expires_at: to_secs(s.expires_at),
        current: s.current,
    }
}

/// An event as WatchRevocations sends it; a heartbeat is an event with no `target`.
pub fn feed_item(item: FeedItem) -> pb::RevocationEvent {
    match item {
        FeedItem::Event(event) => revocation_event(&event),
        FeedItem::Heartbeat { seq } => pb::RevocationEvent {
            seq: u64::try_from(seq).unwrap_or_default(),
            target: None,
            expires_at: 0,
        },
    }
}

fn revocation_event(r: &Revocation) -> pb::RevocationEvent {
    use pb::revocation_event::Target;
    let target = match &r.target {
        RevocationTarget::Session(id) => Target::SessionId(id.clone()),
        RevocationTarget::Jti(jti) => Target::Jti(jti.clone()),
        RevocationTarget::User {
            user_id,
            not_before,
        } => Target::User(pb::UserCutoff {
            user_id: user_id.clone(),
            not_before: to_secs(*not_before),
        }),
    };
    pb::RevocationEvent {
        seq: u64::try_from(r.seq).unwrap_or_default(),
        target: Some(target),
        expires_at: to_secs(r.expires_at),
    }
}

pub fn account_event(e: &AccountEvent) -> pb::AccountEvent {
    pb::AccountEvent {
        seq: u64::try_from(e.seq).unwrap_or_default(),
        at: to_secs(e.at),
        user_id: e.user_id.clone(),
        kind: e.kind.clone(),
        session_id: e.session_id.clone(),
        ip: e.ip.clone(),
        device: e.device.clone(),
        client_id: e.client_id.clone(),
        new_device: e.new_device,
        detail: e.detail.clone(),
    }
}

pub fn user(u: UserView) -> pb::User {
    pb::User {
        user_id: u.user_id,
        username: u.username,
        scopes: u.scopes,
        disabled: u.disabled,
        created_at: to_secs(u.created_at),
        live_sessions: u.live_sessions,
    }
}

pub fn signing_key(k: KeyInfo) -> pb::SigningKey {
    pb::SigningKey {
        kid: k.kid,
        alg: k.alg,
        created_at: to_secs(k.created_at),
        state: k.status.as_str().into(),
    }
}
