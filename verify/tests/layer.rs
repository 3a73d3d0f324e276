//! The layer in a real tonic server (the example's Greeter), called over a socket: it must fit
//! tonic's `Server::layer` and its refusals must read as latchkey's do to a gRPC client.

mod support;

use std::time::Duration;

use jsonwebtoken::Algorithm;
use latchkey_verify::{Claims, Verifier};
use support::{
    Latchkey,
    testkeys::{TestKey, claims, jwks},
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Request, Response, Status, transport::Server};
use tonic_types::StatusExt;

mod greeter {
    include!(concat!(env!("OUT_DIR"), "/latchkey.example.v1.rs"));
}

use greeter::{
    HelloReply, HelloRequest,
    greeter_client::GreeterClient,
    greeter_server::{Greeter, GreeterServer},
};

struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let claims = request
            .extensions()
            .get::<Claims>()
            .ok_or_else(|| Status::internal("no claims"))?;
        Ok(Response::new(HelloReply {
            sub: claims.sub.clone(),
            session_id: claims.sid.clone(),
            scope: claims.scope.clone(),
        }))
    }
}

async fn hello(addr: std::net::SocketAddr, bearer: Option<&str>) -> Result<HelloReply, Status> {
    let mut client = GreeterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut request = Request::new(HelloRequest {});
    if let Some(token) = bearer {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    client.hello(request).await.map(Response::into_inner)
}

#[tokio::test]
async fn the_greeter_behind_the_layer_answers_good_tokens_and_refuses_others() {
    let key = TestKey::generate(Algorithm::EdDSA);
    let latchkey = Latchkey::start(jwks(&[&key])).await;
    let verifier = Verifier::builder(latchkey.url()).connect().await.unwrap();
    tokio::time::timeout(Duration::from_secs(3), verifier.ready())
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .layer(verifier.layer().exempt("/grpc.health.v1.Health/"))
        .add_service(GreeterServer::new(Hello))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);

    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs() as i64;
    let reply = hello(addr, Some(&key.sign(&claims(now)))).await.unwrap();
    assert_eq!(
        (reply.sub.as_str(), reply.session_id.as_str()),
        ("user-1", "session-1")
    );
    assert_eq!(reply.scope, "read write");

    for bearer in [None, Some("forged")] {
        let refusal = hello(addr, bearer).await.unwrap_err();
        assert_eq!(refusal.code(), Code::Unauthenticated);
        let info = refusal.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(
            (info.domain.as_str(), info.reason.as_str()),
            ("latchkey", "ACCESS_TOKEN_INVALID")
        );
    }
}
