//! An oversized request message, as the contract words it: tonic refuses a message over the
//! decoding limit with `OUT_OF_RANGE` and no details, where the gRPC status-code guide prescribes
//! `RESOURCE_EXHAUSTED`; this layer rewrites that answer into `RESOURCE_EXHAUSTED` with the
//! `ErrorInfo` reason `REQUEST_TOO_LARGE`, for every service of the server at once.
//!
//! latchkey itself never answers `OUT_OF_RANGE` (a value out of range in a request is
//! `INVALID_ARGUMENT`), so a trailers-only `OUT_OF_RANGE` response can only be tonic's refusal. A
//! refusal arrives that way for unary and server-streaming calls, which is every call with a limit.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{Code, Status};
use tower::{Layer, Service};

use super::status::request_too_large;

#[derive(Debug, Clone, Copy)]
pub struct TooLargeLayer;

impl<S> Layer<S> for TooLargeLayer {
    type Service = TooLarge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TooLarge { inner }
    }
}

#[derive(Debug, Clone)]
pub struct TooLarge<S> {
    inner: S,
}

impl<S, B, RB> Service<http::Request<B>> for TooLarge<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let code = response.headers().get(Status::GRPC_STATUS);
            if code.is_some_and(|c| Code::from_bytes(c.as_bytes()) == Code::OutOfRange) {
                rewrite(&mut response);
            }
            Ok(response)
        })
    }
}

/// Replaces the status headers (code, message, details) of a trailers-only answer.
fn rewrite<RB>(response: &mut http::Response<RB>) {
    let status = request_too_large();
    let headers = response.headers_mut();
    for name in [
        Status::GRPC_STATUS,
        Status::GRPC_MESSAGE,
        Status::GRPC_STATUS_DETAILS,
    ] {
        headers.remove(name);
    }
    // The status is ours, in plain ASCII: it always makes valid headers.
    if status.add_header(headers).is_ok() {
        response.extensions_mut().insert(status);
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn tonics_out_of_range_becomes_resource_exhausted_with_its_reason() {
        let mut response: http::Response<()> =
            Status::out_of_range("decoded message length too large").into_http();
        rewrite(&mut response);
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("REQUEST_TOO_LARGE", "latchkey")
        );
    }
}
