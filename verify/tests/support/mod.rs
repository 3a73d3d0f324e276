//! A stand-in latchkey for the integration tests and the benchmark: GetJwks answers what the test
//! set, WatchRevocations streams the events the test added, then a heartbeat every 200 ms unless
//! told to be silent; streams can be cut. Every other call is UNIMPLEMENTED. The real server's
//! end-to-end tests live with the server; this one lets the feed's edge cases be staged at will.

// Shared by several test crates (and the benchmark), each of which uses a part of it.
#![allow(dead_code)]

#[path = "../../src/testkeys.rs"]
pub mod testkeys;

pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/server/latchkey.v1.rs"));
}

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use pb::{
    auth_service_server::{AuthService, AuthServiceServer},
    *,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, wrappers::ReceiverStream, wrappers::TcpListenerStream};
use tonic::{Request, Response, Status};

const HEARTBEAT: Duration = Duration::from_millis(200);

#[derive(Default)]
struct State {
    jwks: Mutex<String>,
    events: Mutex<Vec<RevocationEvent>>,
    silent: AtomicBool,
    /// Moves to cut every open stream.
    cut: AtomicU64,
    /// The `after_seq` of every WatchRevocations call, in order.
    watch_calls: Mutex<Vec<u64>>,
    jwks_calls: AtomicU64,
}

/// The handle a test steers the stand-in with.
#[derive(Clone)]
pub struct Latchkey {
    state: Arc<State>,
    changed: watch::Sender<()>,
    pub addr: SocketAddr,
}

impl Latchkey {
    /// Serves on a free port of 127.0.0.1 until the runtime ends.
    pub async fn start(jwks: String) -> Self {
        Self::serve(jwks, None).await
    }

    /// The same, over TLS with `identity` (see [`tls_identity`]).
    pub async fn start_tls(jwks: String, identity: tonic::transport::Identity) -> Self {
        Self::serve(jwks, Some(identity)).await
    }

    async fn serve(jwks: String, tls: Option<tonic::transport::Identity>) -> Self {
        let state = Arc::new(State::default());
        *state.jwks.lock().unwrap() = jwks;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let latchkey = Self {
            state,
            changed: watch::Sender::new(()),
            addr: listener.local_addr().unwrap(),
        };
        let mut server = tonic::transport::Server::builder();
        if let Some(identity) = tls {
            let config = tonic::transport::ServerTlsConfig::new().identity(identity);
            server = server.tls_config(config).unwrap();
        }
        let service = AuthServiceServer::new(latchkey.clone());
        let incoming = TcpListenerStream::new(listener);
        tokio::spawn(server.add_service(service).serve_with_incoming(incoming));
        latchkey
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_jwks(&self, jwks: String) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    /// Adds a revocation event with the next `seq`, and returns that `seq`.
    pub fn revoke(&self, target: revocation_event::Target, expires_at: i64) -> u64 {
        let mut events = self.state.events.lock().unwrap();
        let seq = events.last().map_or(0, |e| e.seq) + 1;
        events.push(RevocationEvent {
            seq,
            target: Some(target),
            expires_at,
        });
        drop(events);
        self.changed.send_replace(());
        seq
    }

    /// No heartbeats while `silent` (events are still sent).
    pub fn set_silent(&self, silent: bool) {
        self.state.silent.store(silent, Ordering::SeqCst);
    }

    /// Ends every open stream with an error.
    pub fn cut_streams(&self) {
        self.state.cut.fetch_add(1, Ordering::SeqCst);
        self.changed.send_replace(());
    }

    pub fn watch_calls(&self) -> Vec<u64> {
        self.state.watch_calls.lock().unwrap().clone()
    }

    pub fn jwks_calls(&self) -> u64 {
        self.state.jwks_calls.load(Ordering::SeqCst)
    }

    /// One stream: the events after `after`, then new ones and heartbeats, until cut or closed.
    async fn stream(self, mut last: u64, tx: mpsc::Sender<Result<RevocationEvent, Status>>) {
        let cut = self.state.cut.load(Ordering::SeqCst);
        let mut changed = self.changed.subscribe();
        loop {
            if self.state.cut.load(Ordering::SeqCst) != cut {
                let _ = tx.send(Err(Status::unavailable("cut by the test"))).await;
                return;
            }
            let pending: Vec<RevocationEvent> = {
                let events = self.state.events.lock().unwrap();
                events.iter().filter(|e| e.seq > last).cloned().collect()
            };
            let mut outgoing = Vec::new();
            for event in pending {
                last = event.seq;
                outgoing.push(event);
            }
            if !self.state.silent.load(Ordering::SeqCst) {
                outgoing.push(RevocationEvent {
                    seq: last,
                    target: None,
                    expires_at: 0,
                });
            }
            for event in outgoing {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<RevocationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl AuthService for Latchkey {
    type WatchRevocationsStream = EventStream;

    async fn get_jwks(
        &self,
        _: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        self.state.jwks_calls.fetch_add(1, Ordering::SeqCst);
        let jwks_json = self.state.jwks.lock().unwrap().clone();
        Ok(Response::new(GetJwksResponse { jwks_json }))
    }

    async fn watch_revocations(
        &self,
        request: Request<WatchRevocationsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let after = request.into_inner().after_seq;
        self.state.watch_calls.lock().unwrap().push(after);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(self.clone().stream(after, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn login(&self, _: Request<LoginRequest>) -> Result<Response<TokenResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn refresh(&self, _: Request<RefreshRequest>) -> Result<Response<TokenResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn revoke(&self, _: Request<RevokeRequest>) -> Result<Response<RevokeResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn introspect(
        &self,
        _: Request<IntrospectRequest>,
    ) -> Result<Response<IntrospectResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn logout_all(
        &self,
        _: Request<LogoutAllRequest>,
    ) -> Result<Response<LogoutAllResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn list_sessions(
        &self,
        _: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn list_activity(
        &self,
        _: Request<ListActivityRequest>,
    ) -> Result<Response<ListActivityResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }

    async fn change_password(
        &self,
        _: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        Err(Status::unimplemented("stand-in"))
    }
}

/// A CA (its certificate, PEM) and a server identity for `localhost` that it signed.
pub fn tls_identity() -> (String, tonic::transport::Identity) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into()]).unwrap();
    let server = params.signed_by(&server_key, &issuer).unwrap();
    let identity = tonic::transport::Identity::from_pem(server.pem(), server_key.serialize_pem());
    (ca.pem(), identity)
}

/// Polls `check` every 10 ms until it holds, for at most `within`; how long it took.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = tokio::time::Instant::now();
    while started.elapsed() <= within {
        if check() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}
