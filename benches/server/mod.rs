//! The real server in a benchmark's own process, built as `latchkey serve` builds it
//! (`App::build`, then `App::run` on a task), shared by the benchmarks.

use std::{net::SocketAddr, sync::Arc};

use latchkey::{
    app::App,
    config::{Config, ConfigArgs},
    service::{Service, SystemClock},
};

/// Starts a server with `args` (give it port 0); its gRPC address and its service, once the store
/// is reached. It runs until the process ends.
pub async fn start(args: ConfigArgs) -> anyhow::Result<(SocketAddr, Arc<Service>)> {
    let config = Config::resolve(args)?;
    let app = App::build(&config, Arc::new(SystemClock)).await?;
    let (addr, cell) = (app.grpc_addr, app.service_cell());
    tokio::spawn(app.run(std::future::pending()));
    Ok((addr, cell.wait().await))
}
