//! What AuthService and AdminService both hold: the service (once the store was reached), the
//! shutdown signal their streams end on, and the caller lists; and how both read a request's
//! bearer token and turn a parse error into a status.

use std::sync::Arc;

use tokio::sync::watch;
use tonic::{Status, metadata::MetadataMap};

use super::{bearer::bearer, status::to_status};
use crate::{
    domain::caller::Callers,
    service::{Service, ServiceCell, ServiceError},
};

pub struct Edge {
    cell: Arc<ServiceCell>,
    /// Turns true at shutdown.
    stopping: watch::Receiver<bool>,
    pub callers: Arc<Callers>,
}

impl Edge {
    pub fn new(
        cell: Arc<ServiceCell>,
        stopping: watch::Receiver<bool>,
        callers: Arc<Callers>,
    ) -> Self {
        Self {
            cell,
            stopping,
            callers,
        }
    }

    /// The service, or STORE_UNAVAILABLE while the store has not been reached at start-up.
    pub fn service(&self) -> Result<&Arc<Service>, Status> {
        self.cell.get().map_err(to_status)
    }

    /// Completes at shutdown: a stream handed it then ends, so that the graceful shutdown does not
    /// wait on it forever.
    pub fn stop(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    }
}

/// The token of the request's `authorization: Bearer` header, if it carries one.
pub fn bearer_of(metadata: &MetadataMap) -> Option<&str> {
    let header = metadata.get("authorization")?.to_str().ok()?;
    bearer(header)
}

/// A parse error as the client sees it.
pub fn refused(e: impl Into<ServiceError>) -> Status {
    to_status(e.into())
}
