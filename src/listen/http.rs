//! The HTTP port's accept loop. `axum::serve` has neither a header deadline nor a connection cap,
//! so connections are served here by hyper's HTTP/1.1 server directly: its `header_read_timeout`
//! runs from a connection's opening and again after each response, whether or not a byte came.
//! With TLS, each connection's task does the TLS handshake first, under the same deadline.

use std::{io, pin::pin, sync::Arc, time::Duration};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{OwnedSemaphorePermit, watch},
    time::Instant,
};
use tracing::{debug, warn};

use super::{
    Limits, Slots,
    tls::{self, Port, Tls},
    transport::Transport,
};

/// Serves `router` on `listener` (over TLS with `tls`) until `stop` turns true; then stops
/// accepting, lets each connection finish the request it is serving (idle ones close at once),
/// and returns once all have closed.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<Tls>>,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let slots = Slots::new(limits.max_connections, "http");
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout);
    let service = TowerToHyperService::new(router);
    let mut stopping = stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stopping) => break,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(e) => {
                pause_after(&e).await;
                continue;
            }
        };
        let Some(slot) = slots.take() else {
            continue;
        };
        let acceptor = tls.as_ref().map(|tls| tls.acceptor(Port::Http));
        let (http, service, stop) = (http.clone(), service.clone(), stop.clone());
        tokio::spawn(async move {
            let io = match acceptor {
                None => Transport::Plain(tcp),
                Some(acceptor) => {
                    let deadline = Instant::now() + limits.handshake_timeout;
                    match tls::handshake(acceptor, tcp, deadline, Port::Http).await {
                        Some((stream, _)) => Transport::Tls(Box::new(stream)),
                        None => return,
                    }
                }
            };
            serve(http.serve_connection(TokioIo::new(io), service), slot, stop).await;
        });
    }
    drop(listener);
    slots.all_closed().await;
    Ok(())
}

type Connection = http1::Connection<TokioIo<Transport>, TowerToHyperService<Router>>;

/// Serves one connection, holding its slot, until it ends; at `stop`, ends it after the request in
/// flight.
async fn serve(
    connection: Connection,
    _slot: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let mut connection = pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        // Header timeouts, resets and malformed requests: the client's doing, not an error here.
        debug!(error = %e, "HTTP connection ended");
    }
}

/// Completes once `stop` is true (or its sender is gone: the server is being torn down).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// After a failed accept. Errors of one connection (reset before it was accepted) go by; others
/// (out of file descriptors) would fail again at once, so the loop waits a little instead of
/// spinning.
async fn pause_after(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    warn!(error = %e, "accepting an HTTP connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
