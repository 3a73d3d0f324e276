//! The connection a request came on, as the accept loop saw it (`listen`): its peer address and
//! its client certificate's identity, and the caller lists checked against that identity.

use tonic::{Request, Status};

use super::status::to_status;
use crate::{
    domain::caller::{CallerList, Peer},
    service::ServiceError,
};

/// The request's connection. Always there for requests served by `listen`; a request built
/// elsewhere has an unknown peer.
pub fn peer<T>(request: &Request<T>) -> Option<&Peer> {
    request.extensions().get::<Peer>()
}

/// `PERMISSION_DENIED` / `CALLER_NOT_ALLOWED` unless the caller's identity is on `list` (or the
/// list is empty).
pub fn admit<T>(list: &CallerList, request: &Request<T>) -> Result<(), Status> {
    let identity = peer(request).and_then(|peer| peer.identity.as_ref());
    if list.allows(identity) {
        Ok(())
    } else {
        Err(to_status(ServiceError::CallerNotAllowed(identity.cloned())))
    }
}
