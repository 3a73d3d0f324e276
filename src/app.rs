//! Building the server and running it are two steps: `App::build` opens the store, prepares the
//! service and binds both ports (port 0 picks a free one, and the bound addresses are reported), so
//! tests and the CLI share the exact path production takes; `App::run` serves until shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{info, warn};

use crate::{
    config::{Config, redact_url},
    crypto::seal::MasterKey,
    grpc, http,
    service::{Clock, Service},
    store,
};

/// How often revocations made by other processes are picked up.
const REVOCATION_SYNC: Duration = Duration::from_millis(50);
/// How often the signing keys are re-read (`keys rotate` reaches servers within this, well
/// inside the 5 s promised).
const KEY_SYNC: Duration = Duration::from_secs(1);
const GAUGE_REFRESH: Duration = Duration::from_secs(15);

/// Opens the configured store and prepares the service, creating the data directory and the master
/// key on first use.
pub async fn open_service(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Service>> {
    let master_key = match &config.master_key {
        Some(key) => key.clone(),
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("creating the data directory {}", config.data_dir.display())
            })?;
            let path = config.data_dir.join("master.key");
            let (key, generated) = MasterKey::load_or_generate(&path)?;
            if generated {
                warn!(path = %path.display(), "generated a new master key: back it up, and give every replica the same LATCHKEY_MASTER_KEY");
            }
            key
        }
    };
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
    }
    let store = store::connect(&config.database_url)
        .await
        .with_context(|| format!("opening the store at {}", redact_url(&config.database_url)))?;
    let service = Service::new(store, clock, config.settings.clone(), &master_key).await?;
    Ok(Arc::new(service))
}

pub struct App {
    service: Arc<Service>,
    grpc: TcpListener,
    http: TcpListener,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

impl App {
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let service = open_service(config, clock).await?;
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC to {}", config.grpc_addr))?;
        let http = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP to {}", config.http_addr))?;
        Ok(Self {
            grpc_addr: grpc.local_addr()?,
            http_addr: http.local_addr()?,
            service,
            grpc,
            http,
        })
    }

    pub fn service(&self) -> Arc<Service> {
        self.service.clone()
    }

    /// Serves until `shutdown` completes: then health turns NOT_SERVING, in-flight calls finish,
    /// and this returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        grpc::set_serving(&reporter, true).await;
        let metrics = crate::telemetry::metrics();
        let mut background = JoinSet::new();
        spawn_background(&mut background, self.service.clone(), metrics.clone());

        let (stop_tx, stop_rx) = watch::channel(false);
        let announcer = reporter.clone();
        tokio::spawn(async move {
            shutdown.await;
            info!("shutting down: finishing in-flight calls");
            grpc::set_serving(&announcer, false).await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };

        info!(grpc = %self.grpc_addr, http = %self.http_addr, "latchkey serving");
        let grpc_server = grpc::router(self.service.clone(), health, stop_rx.clone())?
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(self.grpc),
                stopped(stop_rx.clone()),
            );
        let http_server = axum::serve(self.http, http::router(self.service.clone(), metrics))
            .with_graceful_shutdown(stopped(stop_rx));
        let (grpc_result, http_result) = tokio::join!(grpc_server, http_server);
        background.abort_all();
        grpc_result.context("gRPC server")?;
        http_result.context("HTTP server")?;
        info!("stopped");
        Ok(())
    }
}

fn spawn_background(
    tasks: &mut JoinSet<()>,
    service: Arc<Service>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) {
    let s = service.clone();
    tasks.spawn(every(REVOCATION_SYNC, move || {
        let s = s.clone();
        async move {
            if let Err(e) = s.sync_revocations().await {
                warn!(error = %e, "revocation sync failed");
            }
        }
    }));
    let s = service.clone();
    tasks.spawn(every(KEY_SYNC, move || {
        let s = s.clone();
        async move {
            if let Err(e) = s.sync_keys().await {
                warn!(error = %e, "signing key sync failed");
            }
        }
    }));
    tasks.spawn(every(GAUGE_REFRESH, move || {
        let (s, metrics) = (service.clone(), metrics.clone());
        async move {
            metrics.run_upkeep();
            if let Ok(live) = s.count_live_sessions().await {
                metrics::gauge!("latchkey_active_sessions").set(live as f64);
            }
        }
    }));
}

/// Runs `task` every `period`, never two at once.
async fn every<F, Fut>(period: Duration, task: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        task().await;
    }
}
