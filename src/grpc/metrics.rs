//! Per-RPC request counts (by method and status code) and latency histograms.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tower::{Layer, Service};

#[derive(Debug, Clone, Copy)]
pub struct RpcMetricsLayer;

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

/// The methods we serve: only these become labels, so clients cannot grow the label set at will.
const METHODS: [&str; 14] = [
    "/latchkey.v1.AuthService/Login",
    "/latchkey.v1.AuthService/Refresh",
    "/latchkey.v1.AuthService/Revoke",
    "/latchkey.v1.AuthService/Introspect",
    "/latchkey.v1.AuthService/LogoutAll",
    "/latchkey.v1.AuthService/ListSessions",
    "/latchkey.v1.AuthService/GetJwks",
    "/latchkey.v1.AuthService/WatchRevocations",
    "/envoy.service.auth.v3.Authorization/Check",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.health.v1.Health/List",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

fn method_label(path: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == path)
        .copied()
        .unwrap_or("unknown")
}

impl<S, B, RB> Service<http::Request<B>> for RpcMetrics<S>
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
        let method = method_label(request.uri().path());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            // Errors travel as trailers-only responses, with grpc-status among the headers; a
            // successful unary call sends it in the trailers, so its absence here means OK.
            let code = match &result {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            metrics::histogram!("latchkey_grpc_request_duration_seconds", "method" => method)
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("latchkey_grpc_requests_total", "method" => method, "code" => code)
                .increment(1);
            result
        })
    }
}
