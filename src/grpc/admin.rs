//! AdminService: one thin handler per RPC, each authorised first (an admin bearer token, or a
//! client certificate on `LATCHKEY_ADMIN_CALLERS`), then parsed into the service's terms.

use std::{pin::Pin, sync::Arc};

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{
    convert,
    edge::{Edge, bearer_of, refused},
    pb,
    peer::{ip, listed},
    status::to_status,
};
use crate::{
    domain::types::{InputError, Password, Scope, Username},
    service::{Admin, Service, ServiceError, UserRef},
};

pub struct AdminApi {
    edge: Edge,
}

impl AdminApi {
    pub fn new(edge: Edge) -> Self {
        Self { edge }
    }

    /// The service and the admin behind the call, or the reason there is none.
    fn admin<T>(&self, request: &Request<T>) -> Result<(&Arc<Service>, Admin), Status> {
        let service = self.edge.service()?;
        let certified = listed(&self.edge.callers.admin, request);
        let admin = service
            .admin(bearer_of(request.metadata()), certified, ip(request))
            .map_err(to_status)?;
        Ok((service, admin))
    }
}

fn user_id(raw: String) -> UserRef {
    UserRef::Id(raw)
}

fn scopes(raw: Vec<String>) -> Result<Vec<Scope>, Status> {
    raw.into_iter()
        .map(Scope::parse)
        .collect::<Result<_, _>>()
        .map_err(refused)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::AccountEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminApi {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let (service, admin) = self.admin(&request)?;
        let r = request.into_inner();
        let username = Username::parse(&r.username).map_err(refused)?;
        let password = Password::parse(r.password).map_err(refused)?;
        let user = service
            .create_user(&username, password, scopes(r.scopes)?, &admin)
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::user(user)))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let (service, _) = self.admin(&request)?;
        let r = request.into_inner();
        let user = match (r.user_id.is_empty(), r.username.is_empty()) {
            (false, _) => UserRef::Id(r.user_id),
            (true, false) => UserRef::Name(Username::parse(&r.username).map_err(refused)?),
            (true, true) => return Err(refused(InputError::Missing("user_id or username"))),
        };
        let user = service.get_user(&user).await.map_err(to_status)?;
        Ok(Response::new(convert::user(user)))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let (service, _) = self.admin(&request)?;
        let r = request.get_ref();
        if r.username_prefix.len() > 256 {
            return Err(refused(InputError::TooLong("username_prefix")));
        }
        let listing = service
            .list_users(&r.username_prefix, r.page_size, &r.page_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: listing.users.into_iter().map(convert::user).collect(),
            next_page_token: listing.next_page_token,
        }))
    }

    async fn set_password(
        &self,
        request: Request<pb::SetPasswordRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let (service, admin) = self.admin(&request)?;
        let r = request.into_inner();
        let password = Password::parse(r.password).map_err(refused)?;
        let changed = service
            .set_password(&user_id(r.user_id), password, &admin)
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::user(changed.user)))
    }

    async fn set_scopes(
        &self,
        request: Request<pb::SetScopesRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let (service, admin) = self.admin(&request)?;
        let r = request.into_inner();
        let user = service
            .set_scopes(&user_id(r.user_id), scopes(r.scopes)?, &admin)
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::user(user)))
    }

    async fn set_disabled(
        &self,
        request: Request<pb::SetDisabledRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let (service, admin) = self.admin(&request)?;
        let r = request.into_inner();
        let changed = service
            .set_disabled(&user_id(r.user_id), r.disabled, &admin)
            .await
            .map_err(to_status)?;
        Ok(Response::new(convert::user(changed.user)))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let (service, admin) = self.admin(&request)?;
        let revoked_sessions = service
            .delete_user(&user_id(request.into_inner().user_id), &admin)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::DeleteUserResponse { revoked_sessions }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::SigningKey>, Status> {
        let (service, _) = self.admin(&request)?;
        let kid = service.rotate_keys().await.map_err(to_status)?;
        let key = service
            .list_keys()
            .map_err(to_status)?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| to_status(ServiceError::internal("the new key is not in the ring")))?;
        Ok(Response::new(convert::signing_key(key)))
    }

    async fn list_signing_keys(
        &self,
        request: Request<pb::ListSigningKeysRequest>,
    ) -> Result<Response<pb::ListSigningKeysResponse>, Status> {
        let (service, _) = self.admin(&request)?;
        let keys = service.list_keys().map_err(to_status)?;
        Ok(Response::new(pb::ListSigningKeysResponse {
            keys: keys.into_iter().map(convert::signing_key).collect(),
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let (service, _) = self.admin(&request)?;
        let r = request.get_ref();
        let listing = service
            .list_events(&r.user_id, &r.kinds, r.page_size, &r.page_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListEventsResponse {
            events: listing
                .events
                .iter()
                .map(|e| convert::account_event(e))
                .collect(),
            next_page_token: listing.next_page_token,
        }))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let (service, _) = self.admin(&request)?;
        let after = i64::try_from(request.get_ref().after_seq)
            .map_err(|_| refused(InputError::OutOfRange("after_seq")))?;
        let feed = service
            .watch_events(after, self.edge.stop())
            .map_err(to_status)?;
        let events = feed.map(|item| item.map(|e| convert::account_event(&e)).map_err(to_status));
        Ok(Response::new(Box::pin(events)))
    }
}
