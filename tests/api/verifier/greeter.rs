//! The greeter as its users meet it: health and reflection (both versions) open to anyone, Hello
//! only to a caller with a valid bearer token, refused as latchkey refuses.

use tonic::Request;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{
    app::spawn_app,
    client::{lazy_channel, reason},
    greeter::{Answer, Greeter, HelloRequest, invalid},
};

/// The services the greeter's reflection lists, in one protocol version.
macro_rules! listed_services {
    ($version:ident, $addr:expr) => {{
        use tonic_reflection::pb::$version::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut client = ServerReflectionClient::new(lazy_channel($addr));
        let answer = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await;
        let mut responses = answer.expect("reflection answers").into_inner();
        let response = responses.message().await.expect("a response").expect("one");
        match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("not a list of services: {other:?}"),
        }
    }};
}

#[tokio::test]
async fn health_and_reflection_are_open_and_hello_needs_a_valid_bearer() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let greeter = Greeter::start(app.grpc_addr, &[]).await;

    let mut health = HealthClient::new(lazy_channel(greeter.addr));
    for service in ["", "latchkey.example.v1.Greeter"] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let status = health.check(request).await.expect("health answers");
        assert_eq!(
            status.into_inner().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    for services in [
        listed_services!(v1, greeter.addr),
        listed_services!(v1alpha, greeter.addr),
    ] {
        for name in ["latchkey.example.v1.Greeter", "grpc.health.v1.Health"] {
            assert!(services.iter().any(|s| s == name), "{name} in {services:?}");
        }
    }

    let reply = greeter.hello(&alice.access_token).await.expect("accepted");
    assert_eq!(reply.session_id, alice.session_id);
    assert_eq!(reply.scope, alice.scope);
    let refused = greeter
        .call(Request::new(HelloRequest {}))
        .await
        .unwrap_err();
    let answer = Answer::Refused(refused.code(), reason(&refused));
    assert_eq!(answer, invalid(), "without a bearer");
    for bad in ["", "not-a-jwt", &alice.refresh_token] {
        assert_eq!(greeter.answer(bad).await, invalid(), "{bad:?}");
    }
}
