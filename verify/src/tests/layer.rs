//! The tower layer over a stand-in service, without sockets: what passes, what is refused and
//! how the refusal reads on the wire.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use tower::{Layer, Service, ServiceExt, service_fn};

use super::{Fixture, fixture};
use crate::Claims;

/// A service that answers with the `sub` the layer put in the extensions.
fn echo()
-> impl Service<Request<()>, Response = Response<String>, Error = std::convert::Infallible> + Clone
{
    service_fn(|request: Request<()>| async move {
        let sub = request.extensions().get::<Claims>().map(|c| c.sub.clone());
        Ok(Response::new(sub.unwrap_or_else(|| "nobody".into())))
    })
}

async fn call(f: &Fixture, path: &str, authorization: Option<&str>) -> Response<String> {
    let layer = f.verifier.layer().exempt("/grpc.health.v1.Health/");
    let mut request = Request::builder().uri(format!("http://localhost{path}"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let request = request.body(()).unwrap();
    layer.layer(echo()).oneshot(request).await.unwrap()
}

/// The gRPC status of a trailers-only refusal, and its `ErrorInfo` reason.
fn refusal(response: &Response<String>) -> (Code, String) {
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "gRPC refusals travel as HTTP 200"
    );
    let status = Status::from_header_map(response.headers()).expect("a grpc-status header");
    let info = status
        .get_details_error_info()
        .expect("an ErrorInfo detail");
    assert_eq!(info.domain, "latchkey");
    (status.code(), info.reason)
}

const HELLO: &str = "/latchkey.example.v1.Greeter/Hello";

#[tokio::test]
async fn a_good_bearer_passes_with_its_claims_in_the_extensions() {
    let f = fixture();
    let token = f.token();
    for scheme in ["Bearer", "bearer"] {
        let response = call(&f, HELLO, Some(&format!("{scheme} {token}"))).await;
        assert_eq!(response.body(), "user-1");
    }
}

#[tokio::test]
async fn missing_bad_and_revoked_bearers_are_unauthenticated() {
    let f = fixture();
    let token = f.token();
    for authorization in [
        None,
        Some("Basic abc"),
        Some("Bearer "),
        Some("Bearer forged.token.x"),
    ] {
        let response = call(&f, HELLO, authorization).await;
        assert_eq!(
            refusal(&response),
            (Code::Unauthenticated, "ACCESS_TOKEN_INVALID".into())
        );
        assert_eq!(response.body(), "", "the service was not called");
    }
    f.hear(crate::pb::RevocationEvent {
        seq: 1,
        target: Some(crate::pb::revocation_event::Target::Jti("jti-1".into())),
        expires_at: i64::MAX,
    });
    let response = call(&f, HELLO, Some(&format!("Bearer {token}"))).await;
    assert_eq!(
        refusal(&response),
        (Code::Unauthenticated, "ACCESS_TOKEN_INVALID".into())
    );
}

#[tokio::test]
async fn a_stale_verifier_answers_unavailable_and_exempt_paths_pass_unchecked() {
    let f = fixture();
    f.clock.advance(Duration::from_secs(11));
    let response = call(&f, HELLO, Some(&format!("Bearer {}", f.token()))).await;
    assert_eq!(
        refusal(&response),
        (Code::Unavailable, "REVOCATIONS_STALE".into())
    );
    let response = call(&f, "/grpc.health.v1.Health/Check", None).await;
    assert_eq!(response.body(), "nobody");
}
