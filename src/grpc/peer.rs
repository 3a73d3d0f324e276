//! The connection a request came on, as the accept loop saw it (`listen`): its peer address and
//! its client certificate's identity, and the caller lists checked against that identity.

use tonic::{Request, Status};

use super::status::to_status;
use crate::{
    domain::caller::{CallerIdentity, CallerList, Peer},
    service::ServiceError,
};

/// The request's connection. Always there for requests served by `listen`; a request built
/// elsewhere has an unknown peer.
pub fn peer<T>(request: &Request<T>) -> Option<&Peer> {
    request.extensions().get::<Peer>()
}

/// The client's address, as account events record it (empty when unknown).
pub fn ip<T>(request: &Request<T>) -> String {
    peer(request)
        .and_then(|peer| peer.addr)
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// The client certificate's identity if `list` names it. An empty list names nobody here: it
/// grants nothing, unlike `admit`'s lists, which an empty one leaves open.
pub fn listed<'a, T>(list: &CallerList, request: &'a Request<T>) -> Option<&'a CallerIdentity> {
    let identity = peer(request)?.identity.as_ref()?;
    (!list.is_open() && list.allows(Some(identity))).then_some(identity)
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
