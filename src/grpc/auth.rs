//! AuthService: one thin handler per RPC. Each one parses the request into the service's terms
//! (see `convert`), calls the service, and turns the answer (or the error, through
//! `status::to_status`) back.

use std::{pin::Pin, sync::Arc};

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, metadata::MetadataMap};

use super::{
    convert,
    edge::{Edge, bearer_of, refused},
    pb,
    peer::{admit, ip},
    status::to_status,
};
use crate::{
    domain::{
        token::{PresentedToken, RefreshToken},
        types::{InputError, Password},
    },
    service::{Caller, LoginCommand, Service},
};

pub struct AuthApi {
    /// Introspect and WatchRevocations are for the services on `callers.service`.
    edge: Edge,
}

impl AuthApi {
    pub fn new(edge: Edge) -> Self {
        Self { edge }
    }

    fn service(&self) -> Result<&Arc<Service>, Status> {
        self.edge.service()
    }

    fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        self.service()?
            .authenticate(bearer_of(metadata))
            .map_err(to_status)
    }
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
        let ip = ip(&request);
        let token = RefreshToken::parse(request.into_inner().refresh_token).map_err(refused)?;
        let pair = service.refresh(token, ip).await.map_err(to_status)?;
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
        service
            .revoke(token, ip(&request))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RevokeResponse {}))
    }

    async fn introspect(
        &self,
        request: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        admit(&self.edge.callers.service, &request)?;
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
            .logout_all(&caller, &request.get_ref().user_id, ip(&request))
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
        admit(&self.edge.callers.service, &request)?;
        let after = i64::try_from(request.get_ref().after_seq)
            .map_err(|_| refused(InputError::OutOfRange("after_seq")))?;
        let feed = self
            .service()?
            .watch_revocations(after, self.edge.stop())
            .map_err(to_status)?;
        let events = feed.map(|item| item.map(convert::feed_item).map_err(to_status));
        Ok(Response::new(Box::pin(events)))
    }

    async fn list_activity(
        &self,
        request: Request<pb::ListActivityRequest>,
    ) -> Result<Response<pb::ListActivityResponse>, Status> {
        let caller = self.caller(request.metadata())?;
        let r = request.get_ref();
        let listing = self
            .service()?
            .list_activity(&caller, r.page_size, &r.page_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListActivityResponse {
            events: listing
                .events
                .iter()
                .map(|e| convert::account_event(e))
                .collect(),
            next_page_token: listing.next_page_token,
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let caller = self.caller(request.metadata())?;
        let ip = ip(&request);
        let r = request.into_inner();
        let current = Password::parse(r.current_password).map_err(refused)?;
        let new = Password::parse(r.new_password).map_err(refused)?;
        let revoked_sessions = self
            .service()?
            .change_password(&caller, current, new, ip)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ChangePasswordResponse {
            revoked_sessions,
        }))
    }
}
