//! The two ports' accept loops, with the limits that a client on the network could otherwise
//! exhaust at no cost to itself (slowloris): a cap on the connections open at once, and a deadline
//! on what a new connection must send before it is served.
//!
//! - [`grpc_incoming`]: the gRPC port's accepted connections, as tonic serves them. The deadline
//!   covers the HTTP/2 handshake (the client's preface and its first SETTINGS frame).
//! - [`serve_http`]: the HTTP port's accept loop and HTTP/1.1 connections. The deadline covers each
//!   request's headers, counted from the connection's opening or from its previous response.
//!
//! A connection beyond the cap is accepted and closed at once, rather than left unaccepted in the
//! kernel's backlog until a slot frees: a client (a probe, a load balancer) learns at once that
//! this replica is full and can go elsewhere, and the backlog never holds stale connections that
//! would be served long after their client gave up. Refusals are counted in
//! `latchkey_connections_refused_total{port}`.
//!
//! With TLS ([`tls`]), the TLS handshake runs in between accepting and serving, in both loops:
//! after a connection has its slot, under the same deadline, in the connection's own task; the TLS
//! stream then takes the TCP stream's place ([`transport`]).

use std::{sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::debug;

mod grpc;
mod http;
pub mod tls;
mod transport;

pub use self::{
    grpc::grpc_incoming,
    http::serve_http,
    tls::{Tls, TlsFiles},
};

/// The limits of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; the next one is closed as soon as it is accepted.
    pub max_connections: usize,
    /// How long a connection may take to say what it wants: on the gRPC port the HTTP/2 preface and
    /// settings, on the HTTP port each request's headers. Then it is closed.
    pub handshake_timeout: Duration,
}

/// The limits of both ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    pub grpc: Limits,
    pub http: Limits,
}

/// The connection slots of one port. A slot is held for a connection's whole life, so the
/// semaphore also tells when every connection has ended.
#[derive(Debug, Clone)]
struct Slots {
    free: Arc<Semaphore>,
    max: u32,
    port: &'static str,
}

impl Slots {
    fn new(max: usize, port: &'static str) -> Self {
        // The setting is bounded far below u32::MAX (see config); saturate rather than trust it.
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        Self {
            free: Arc::new(Semaphore::new(max as usize)),
            max,
            port,
        }
    }

    /// A slot for a connection just accepted, or `None` when all are taken: the caller then drops
    /// the connection, which closes it.
    fn take(&self) -> Option<OwnedSemaphorePermit> {
        let slot = self.free.clone().try_acquire_owned().ok();
        if slot.is_none() {
            // Not a warning per connection: a flood would flood the log too. The counter shows it.
            debug!(
                port = self.port,
                "connection refused: at the connection cap"
            );
            metrics::counter!("latchkey_connections_refused_total", "port" => self.port)
                .increment(1);
        }
        slot
    }

    /// Completes once every connection has ended (their slots are all free again).
    async fn all_closed(&self) {
        let _ = self.free.acquire_many(self.max).await;
    }
}
