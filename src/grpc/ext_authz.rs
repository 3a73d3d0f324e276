//! `envoy.service.auth.v3.Authorization/Check` for Envoy and Istio ext_authz sidecars. An active
//! bearer token lets the request go upstream with `x-latchkey-sub`, `x-latchkey-session` and
//! `x-latchkey-scope` set by us (overwriting whatever the client sent, and every other
//! `x-latchkey-*` header the client sent is dropped); anything else is answered 401.

use std::sync::Arc;

use envoy_types::ext_authz::v3::{
    CheckRequestExt, CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
    pb::{Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode},
};
use tonic::{Request, Response, Status};
use tracing::warn;

use super::{bearer::bearer, peer::admit};
use crate::{domain::caller::Callers, service::ServiceCell};

const HEADER_PREFIX: &str = "x-latchkey-";

pub struct ExtAuthz {
    cell: Arc<ServiceCell>,
    /// Check is for the proxies on `callers.service`.
    callers: Arc<Callers>,
}

impl ExtAuthz {
    pub fn new(cell: Arc<ServiceCell>, callers: Arc<Callers>) -> Self {
        Self { cell, callers }
    }
}

fn deny() -> CheckResponse {
    let mut denied = DeniedHttpResponseBuilder::new();
    denied
        .set_http_status(HttpStatusCode::Unauthorized)
        .add_header(
            "www-authenticate",
            r#"Bearer error="invalid_token""#,
            None,
            false,
        );
    let mut response = CheckResponse::with_status(Status::unauthenticated("invalid token"));
    response.set_http_response(denied);
    response
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        // A proxy not on the list is refused outright (an error, not a verdict on its request):
        // Envoy then denies the request it was checking, as it does when latchkey is unreachable.
        admit(&self.callers.service, &request)?;
        let request = request.into_inner();
        let headers = request.get_client_headers();
        let token = headers
            .and_then(|h| h.get("authorization"))
            .and_then(|v| bearer(v));
        let caller = match token.map(|t| self.cell.get().and_then(|s| s.check_access(t))) {
            Some(Ok(Some(caller))) => caller,
            Some(Err(e)) => {
                // Activity could not be established: fail closed.
                warn!(error = %e.chain(), "ext_authz check failed closed");
                return Ok(Response::new(deny()));
            }
            _ => return Ok(Response::new(deny())),
        };
        let mut ok = OkHttpResponseBuilder::new();
        let overwrite = Some(HeaderAppendAction::OverwriteIfExistsOrAdd);
        ok.add_header("x-latchkey-sub", caller.user_id, overwrite, true)
            .add_header("x-latchkey-session", caller.session_id, overwrite, true)
            .add_header("x-latchkey-scope", caller.scope, overwrite, true);
        for name in headers.into_iter().flat_map(|h| h.keys()) {
            let ours = ["x-latchkey-sub", "x-latchkey-session", "x-latchkey-scope"]
                .contains(&name.as_str());
            if name.to_ascii_lowercase().starts_with(HEADER_PREFIX) && !ours {
                ok.remove_header(name.clone());
            }
        }
        let mut response = CheckResponse::with_status(Status::ok("authorized"));
        response.set_http_response(ok);
        Ok(Response::new(response))
    }
}
