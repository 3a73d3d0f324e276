//! A tower layer for tonic servers: every request but those on exempt paths must carry
//! `authorization: Bearer <access token>` that the verifier accepts. The claims go into the
//! request's extensions (`request.extensions().get::<Claims>()` in a handler); a refusal is a
//! trailers-only gRPC response with an `ErrorInfo` (domain `latchkey`) as latchkey's own are.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response, header::AUTHORIZATION};
use tower::{Layer, Service};

use crate::{Verifier, VerifyError, token::MAX_TOKEN_BYTES};

/// Made by [`Verifier::layer`].
#[derive(Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
    exempt: Arc<Vec<String>>,
}

impl std::fmt::Debug for VerifyLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyLayer")
            .field("exempt", &self.exempt)
            .finish_non_exhaustive()
    }
}

impl VerifyLayer {
    pub(crate) fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            exempt: Arc::default(),
        }
    }

    /// Lets requests whose path starts with `prefix` through unchecked, e.g.
    /// `"/grpc.health.v1.Health/"` or `"/grpc.reflection."` (both reflection versions).
    pub fn exempt(mut self, prefix: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.exempt).push(prefix.into());
        self
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps around a tonic server's.
#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    inner: S,
    layer: VerifyLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if self
            .layer
            .exempt
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
        {
            return ResponseFuture::Pass {
                inner: self.inner.call(request),
            };
        }
        let bearer = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let verdict = bearer
            .and_then(bearer_token)
            .ok_or(VerifyError::Malformed)
            .and_then(|token| self.layer.verifier.verify(token));
        match verdict {
            Ok(claims) => {
                request.extensions_mut().insert(claims);
                ResponseFuture::Pass {
                    inner: self.inner.call(request),
                }
            }
            Err(refusal) => ResponseFuture::Refuse {
                response: Some(refusal.to_status().into_http()),
            },
        }
    }
}

/// The token of an `authorization` value, latchkey's rule: scheme `Bearer` in any case, spaces
/// around the token ignored; an empty or oversized one is none.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    let usable = !token.is_empty() && token.len() <= MAX_TOKEN_BYTES;
    (scheme.eq_ignore_ascii_case("bearer") && usable).then_some(token)
}

pin_project_lite::pin_project! {
    /// The response of [`VerifyService`]: the inner service's, or a refusal.
    #[project = Projected]
    pub enum ResponseFuture<F, B> {
        Pass { #[pin] inner: F },
        Refuse { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Pass { inner } => inner.poll(cx),
            Projected::Refuse { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after it completed: a caller's bug, answered the safe way.
                None => Poll::Ready(Ok(VerifyError::Malformed.to_status().into_http())),
            },
        }
    }
}
