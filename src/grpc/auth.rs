//! AuthService: one thin handler per RPC. Each one parses the request into the service's terms
//! (see `convert`), calls the service, and turns the answer (or the error, through
//! `status::to_status`) back.

use std::{pin::Pin, sync::Arc};

use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, metadata::MetadataMap};

use super::{bearer::bearer, convert, pb, status::to_status};
use crate::{
    domain::{
        token::{PresentedToken, RefreshToken},
        types::InputError,
    },
    service::{Caller, LoginCommand, RevocationWatch, Service, ServiceCell, ServiceError},
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

    fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let header = metadata.get("authorization").and_then(|v| v.to_str().ok());
        self.service()?
            .authenticate(header.and_then(bearer))
            .map_err(to_status)
    }
}

/// A parse error as the client sees it.
fn refused(e: impl Into<ServiceError>) -> Status {
    to_status(e.into())
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RevocationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthApi {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let service = self.service()?;
        let command = LoginCommand::try_from(request).map_err(refused)?;
        let pair = service.login(command).await.map_err(to_status)?;
        Ok(Response::new(convert::token_response(pair)))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let service = self.service()?;
        let token = RefreshToken::parse(request.into_inner().refresh_token).map_err(refused)?;
        let pair = service.refresh(token).await.map_err(to_status)?;
        Ok(Response::new(convert::token_response(pair)))
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let service = self.service()?;
        let raw = &request.get_ref().token;
        if raw.is_empty() {
            return Err(refused(InputError::Missing("token")));
        }
        let token = PresentedToken::parse(raw).map_err(refused)?;
        service.revoke(token).await.map_err(to_status)?;
        Ok(Response::new(pb::RevokeResponse {}))
    }

    async fn introspect(
        &self,
        request: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        let service = self.service()?;
        let token = PresentedToken::parse(&request.get_ref().token).map_err(refused)?;
        let found = service.introspect(token).await.map_err(to_status)?;
        Ok(Response::new(convert::introspection(found)))
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
        let sessions = sessions.into_iter().map(convert::session).collect();
        Ok(Response::new(pb::ListSessionsResponse { sessions }))
    }

    async fn get_jwks(
        &self,
        _: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let jwks = self.service()?.jwks_json().map_err(to_status)?;
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
            .map_err(|_| refused(InputError::OutOfRange("after_seq")))?;
        let watch = self.service()?.watch_revocations(after);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(feed(watch, tx, self.stopping.clone()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Sends the events of `watch` as they come, until the client goes away or the server stops.
async fn feed(
    mut watch: RevocationWatch,
    tx: mpsc::Sender<Result<pb::RevocationEvent, Status>>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let events = tokio::select! {
            events = watch.next_events() => events,
            () = tx.closed() => return,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let events = match events {
            Ok(events) => events,
            Err(e) => {
                let _ = tx.send(Err(to_status(e))).await;
                return;
            }
        };
        for event in events {
            if tx.send(Ok(convert::revocation_event(event))).await.is_err() {
                return;
            }
        }
    }
}
