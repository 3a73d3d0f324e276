//! The gRPC edge: generated code, one thin handler per RPC, Envoy ext_authz, reflection, health,
//! and the server with explicit limits.

use std::{sync::Arc, time::Duration};

use tonic::transport::{Server, server::Router};
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};

use crate::{domain::caller::Callers, service::ServiceCell};

mod admin;
mod auth;
mod bearer;
mod convert;
mod edge;
mod ext_authz;
mod metrics;
mod peer;
pub mod status;
mod too_large;

#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("latchkey.v1");

    /// The descriptor set of our protos, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/latchkey_descriptor.bin"));
}

pub use admin::AdminApi;
pub use auth::AuthApi;
pub use edge::Edge;

/// Largest request accepted: far above any valid one (tokens are capped at 8 KiB).
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response: a JWKS of a few keys, a long session list.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Health service names: the overall one (""), AuthService and AdminService.
pub const AUTH_SERVICE_NAME: &str = "latchkey.v1.AuthService";
pub const ADMIN_SERVICE_NAME: &str = "latchkey.v1.AdminService";

/// The layers around every service: the metrics outside, the oversized-request answer inside.
pub type Layers = Stack<too_large::TooLargeLayer, Stack<metrics::RpcMetricsLayer, Identity>>;

/// Builds the gRPC router with every service and the limits tonic leaves unbounded by default.
/// `stopping` turns true at shutdown: open WatchRevocations streams then end, so that the graceful
/// shutdown does not wait on them forever. `callers` says who may make the calls reserved to
/// services.
pub fn router(
    cell: Arc<ServiceCell>,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    stopping: tokio::sync::watch::Receiver<bool>,
    callers: Arc<Callers>,
) -> Result<Router<Layers>, tonic_reflection::server::Error> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc.ErrorInfo, so that grpcurl can print our error details.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let auth = pb::auth_service_server::AuthServiceServer::new(AuthApi::new(Edge::new(
        cell.clone(),
        stopping.clone(),
        callers.clone(),
    )))
    .max_decoding_message_size(MAX_REQUEST_BYTES)
    .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let admin = pb::admin_service_server::AdminServiceServer::new(AdminApi::new(Edge::new(
        cell.clone(),
        stopping,
        callers.clone(),
    )))
    .max_decoding_message_size(MAX_REQUEST_BYTES)
    .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let ext_authz = envoy_types::ext_authz::v3::pb::AuthorizationServer::new(
        ext_authz::ExtAuthz::new(cell, callers),
    )
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    Ok(Server::builder()
        .timeout(Duration::from_secs(30))
        .concurrency_limit_per_connection(256)
        .max_concurrent_streams(Some(256))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .http2_max_header_list_size(Some(16 * 1024))
        .layer(metrics::RpcMetricsLayer)
        // Inside the metrics layer, which then counts the rewritten code.
        .layer(too_large::TooLargeLayer)
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(auth)
        .add_service(admin)
        .add_service(ext_authz))
}

/// Marks every service serving, or not.
pub async fn set_serving(reporter: &HealthReporter, serving: bool) {
    let status = if serving {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    reporter.set_service_status(AUTH_SERVICE_NAME, status).await;
    reporter
        .set_service_status(ADMIN_SERVICE_NAME, status)
        .await;
}
