//! The HTTP side port: the JWKS for verifiers that check tokens locally (and Envoy's jwt_authn),
//! liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::service::ServiceCell;

#[derive(Clone)]
struct AppState {
    cell: Arc<ServiceCell>,
    metrics: PrometheusHandle,
    ready: watch::Receiver<bool>,
}

/// `ready` is the server's health status (true: SERVING), which the readiness probe reports.
pub fn router(
    cell: Arc<ServiceCell>,
    metrics: PrometheusHandle,
    ready: watch::Receiver<bool>,
) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState {
            cell,
            metrics,
            ready,
        })
}

async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    match state.cell.get().and_then(|s| s.jwks_json()) {
        Ok(json) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/jwk-set+json"),
                (header::CACHE_CONTROL, "public, max-age=60"),
            ],
            json.to_string(),
        )
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Ready while gRPC health says SERVING: once started, while the store answered the health
/// check's last ping, until shutdown. The probe itself never reaches the store, so probes at any
/// rate cost it nothing.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.cell.get().is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: store not reached yet\n",
        );
    }
    if *state.ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store does not answer, or shutting down\n",
        )
    }
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
