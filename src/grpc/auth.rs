//! AuthService: one thin handler per RPC. Each one turns the request into the service's terms,
//! calls it, and turns the answer (or the error, through `status::to_status`) back.

use std::{pin::Pin, sync::Arc};

use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, metadata::MetadataMap};

use super::{pb, status::to_status};
use crate::{
    crypto::jwt::AccessClaims,
    domain::{
        revocation::{Revocation, RevocationTarget},
        to_secs,
        types::InputError,
    },
    service::{Introspection, LoginInput, Service, ServiceCell, TokenKind, TokenPair},
};

pub struct AuthApi {
    cell: Arc<ServiceCell>,
    stopping: watch::Receiver<bool>,
}

impl AuthApi {
    pub fn new(cell: Arc<ServiceCell>, stopping: watch::Receiver<bool>) -> Self {
        Self { cell, stopping }
    }

    /// The service, or STORE_UNAVAILABLE while the store has not been reached at start-up.
    fn service(&self) -> Result<&Arc<Service>, Status> {
        self.cell.get().map_err(to_status)
    }

    fn caller(&self, metadata: &MetadataMap) -> Result<AccessClaims, Status> {
        self.service()?
            .authenticate(bearer(metadata))
            .map_err(to_status)
    }
}

/// The token of an `authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn token_response(pair: TokenPair) -> pb::TokenResponse {
    pb::TokenResponse {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: "Bearer".into(),
        expires_in: pair.expires_in,
        refresh_expires_in: pair.refresh_expires_in,
        session_id: pair.session_id,
        scope: pair.scope,
    }
}

fn introspection(found: Option<Introspection>) -> pb::IntrospectResponse {
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

fn revocation_event(r: Revocation) -> pb::RevocationEvent {
    use pb::revocation_event::Target;
    let target = match r.target {
        RevocationTarget::Session(id) => Target::SessionId(id),
        RevocationTarget::Jti(jti) => Target::Jti(jti),
        RevocationTarget::User {
            user_id,
            not_before,
        } => Target::User(pb::UserCutoff {
            user_id,
            not_before: to_secs(not_before),
        }),
    };
    pb::RevocationEvent {
        seq: u64::try_from(r.seq).unwrap_or_default(),
        target: Some(target),
        expires_at: to_secs(r.expires_at),
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RevocationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthApi {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let ip = request
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let r = request.into_inner();
        let input = LoginInput {
            username: r.username,
            password: r.password,
            scopes: r.scopes,
            client_id: r.client_id,
            device: r.device,
            ip,
        };
        let pair = self.service()?.login(input).await.map_err(to_status)?;
        Ok(Response::new(token_response(pair)))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let pair = self
            .service()?
            .refresh(&request.get_ref().refresh_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(token_response(pair)))
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        self.service()?
            .revoke(&request.get_ref().token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RevokeResponse {}))
    }

    async fn introspect(
        &self,
        request: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        let found = self
            .service()?
            .introspect(&request.get_ref().token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(introspection(found)))
    }

    async fn logout_all(
        &self,
        request: Request<pb::LogoutAllRequest>,
    ) -> Result<Response<pb::LogoutAllResponse>, Status> {
        let caller = self.caller(request.metadata())?;
        let revoked_sessions = self
            .service()?
            .logout_all(&caller, &request.get_ref().user_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::LogoutAllResponse { revoked_sessions }))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let caller = self.caller(request.metadata())?;
        let sessions = self
            .service()?
            .list_sessions(&caller)
            .await
            .map_err(to_status)?;
        let sessions = sessions
            .into_iter()
            .map(|s| pb::Session {
                session_id: s.session_id,
                client_id: s.client_id,
                device: s.device,
                ip: s.ip,
                created_at: to_secs(s.created_at),
                last_used_at: to_secs(s.last_used_at),
                expires_at: to_secs(s.expires_at),
                current: s.current,
            })
            .collect();
        Ok(Response::new(pb::ListSessionsResponse { sessions }))
    }

    async fn get_jwks(
        &self,
        _: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let jwks = self.service()?.keys().jwks_json().map_err(to_status)?;
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: jwks.to_string(),
        }))
    }

    type WatchRevocationsStream = EventStream;

    async fn watch_revocations(
        &self,
        request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let after = i64::try_from(request.get_ref().after_seq)
            .map_err(|_| to_status(InputError::OutOfRange("after_seq").into()))?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(feed(
            self.service()?.clone(),
            after,
            tx,
            self.stopping.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Sends every event after `after`, then waits for newer ones, until the client goes away or the
/// server stops. Events are read from the store, so a slow client never misses one: it just reads
/// further behind.
async fn feed(
    service: Arc<Service>,
    mut after: i64,
    tx: mpsc::Sender<Result<pb::RevocationEvent, Status>>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut latest = service.revocations().subscribe();
    loop {
        let events = match service.store().revocations_after(after, 500).await {
            Ok(events) => events,
            Err(e) => {
                let _ = tx.send(Err(to_status(e.into()))).await;
                return;
            }
        };
        let caught_up = events.len() < 500;
        for event in events {
            after = event.seq;
            if tx.send(Ok(revocation_event(event))).await.is_err() {
                return;
            }
        }
        if caught_up {
            tokio::select! {
                changed = latest.wait_for(|seen| *seen > after) => if changed.is_err() { return },
                () = tx.closed() => return,
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    }
}
