//! The HTTP side port: the JWKS for verifiers that check tokens locally (and Envoy's jwt_authn),
//! liveness, readiness and Prometheus metrics.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::service::ServiceCell;

#[derive(Clone)]
struct AppState {
    cell: Arc<ServiceCell>,
    metrics: PrometheusHandle,
}

pub fn router(cell: Arc<ServiceCell>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { cell, metrics })
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

/// Ready once started and while the store answers within a second.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let Ok(service) = state.cell.get() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: store not reached yet\n",
        );
    };
    match tokio::time::timeout(Duration::from_secs(1), service.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
