//! A gRPC service that checks latchkey access tokens itself, with `latchkey-verify`: copy it.
//!
//! It serves `latchkey.example.v1.Greeter/Hello`, which answers who called (the token's `sub`, its
//! session and its scope), plus gRPC health and server reflection, which stay open to callers
//! without a token. Every other call needs `authorization: Bearer <access token>`; a revoked token
//! is refused within a second of its revocation, without a call to latchkey per request.
//!
//! ```text
//! cargo run --release -p latchkey-verify --example greeter -- --latchkey http://127.0.0.1:50051
//! grpcurl -plaintext -H "authorization: Bearer $ACCESS_TOKEN" \
//!   127.0.0.1:50061 latchkey.example.v1.Greeter/Hello
//! ```

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use latchkey_verify::{Claims, Verifier};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, transport::Server};

/// The code generated from `verify/proto/latchkey/example/v1/greeter.proto` (by build.rs), and
/// its descriptor set, which reflection serves so that grpcurl needs no .proto file.
mod pb {
    tonic::include_proto!("latchkey.example.v1");
    pub const DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/greeter_descriptor.bin"));
}

use pb::{
    HelloReply, HelloRequest,
    greeter_server::{Greeter, GreeterServer},
};

/// A gRPC Greeter that verifies latchkey access tokens locally.
#[derive(Parser)]
struct Args {
    /// latchkey's gRPC endpoint (keys and the revocation feed come from there).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    latchkey: String,
    /// Where to serve the Greeter (port 0: any free port; the line on stdout says which).
    #[arg(long, default_value = "127.0.0.1:50061")]
    listen: SocketAddr,
    /// The `aud` tokens must carry (latchkey's LATCHKEY_AUDIENCE).
    #[arg(long, default_value = "latchkey")]
    audience: String,
    /// The `iss` tokens must carry (latchkey's LATCHKEY_ISSUER).
    #[arg(long, default_value = "latchkey")]
    issuer: String,
    /// How long the revocation feed may be silent before every token is refused.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    max_staleness: Duration,
}

struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        // The layer let this call through, so it verified the bearer token and left its claims.
        let claims = request
            .extensions()
            .get::<Claims>()
            .ok_or_else(|| Status::internal("no claims: is the layer in place?"))?;
        // Authorization is yours: e.g. `if !claims.has_scope("read") { return Err(..) }`.
        Ok(Response::new(HelloReply {
            sub: claims.sub.clone(),
            session_id: claims.sid.clone(),
            scope: claims.scope.clone(),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The verifier logs (to stderr) when the feed breaks and when it resumes.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    // For an https:// endpoint, add `.tls(ClientTlsConfig::new().ca_certificate(..))` (and
    // `.identity(..)` where latchkey asks for client certificates): see the crate's README.
    let verifier = Verifier::builder(&args.latchkey)
        .audience(args.audience)
        .issuer(args.issuer)
        // Fail closed: past this much silence, refuse with REVOCATIONS_STALE (None: fail open).
        .max_staleness(Some(args.max_staleness))
        .connect()
        .await?;
    // Bind first, so that a port already taken fails at once rather than after loading.
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    eprintln!(
        "waiting for the keys and the revocation feed of {}",
        args.latchkey
    );
    // Until then every token would be refused; this waits as long as latchkey is out of reach.
    verifier.ready().await;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<GreeterServer<Hello>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc.ErrorInfo, so that grpcurl shows why a call was refused.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };

    println!("greeter listening on {addr}");
    std::io::Write::flush(&mut std::io::stdout())?;
    Server::builder()
        // Health and reflection (both versions: grpcurl 1.8 speaks only v1alpha) need no token.
        .layer(
            verifier
                .layer()
                .exempt("/grpc.health.v1.Health/")
                .exempt("/grpc.reflection."),
        )
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(GreeterServer::new(Hello))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
