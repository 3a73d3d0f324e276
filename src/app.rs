//! Building the server and running it are two steps. `App::build` binds both ports (port 0 picks a
//! free one, and the bound addresses are reported), so tests and the CLI share the exact path
//! production takes; `App::run` serves at once and opens the store in the background, retrying
//! while it cannot be reached: meanwhile health says NOT_SERVING and calls fail STORE_UNAVAILABLE.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

use crate::{
    config::{Config, Periods, redact_url},
    grpc, http, listen,
    service::{Clock, Service, ServiceCell, ServiceError},
    store::{self, Mode, StoreError},
};

/// Opens the configured store and prepares the service, for a deployment that exists (the CLI's
/// `user` and `keys` commands): the data directory, master key and database are set up by `serve`
/// (see [`App::run`]) and `migrate` only.
pub async fn open_service(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Service>> {
    open(config, clock, Mode::Existing).await
}

async fn open(config: &Config, clock: Arc<dyn Clock>, mode: Mode) -> anyhow::Result<Arc<Service>> {
    let master_key = config.data_dir.master_key()?;
    let url = config.database_url.expose();
    let store = store::connect(url, mode)
        .await
        .with_context(|| format!("opening the store at {}", redact_url(url)))?;
    let service = Service::new(store, clock, config.settings.clone(), &master_key).await?;
    Ok(Arc::new(service))
}

/// For `latchkey migrate`: opens the configured store, which creates and migrates it as needed.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    store::connect(config.database_url.expose(), Mode::Create).await?;
    Ok(())
}

/// Whether opening failed only because the store cannot be reached (worth retrying).
fn unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<StoreError>(),
            Some(StoreError::Unavailable(_))
        ) || matches!(
            cause.downcast_ref::<ServiceError>(),
            Some(ServiceError::StoreUnavailable(_))
        )
    })
}

pub struct App {
    config: Config,
    /// TLS on both ports, as loaded from the files at start-up.
    tls: Option<Arc<listen::Tls>>,
    clock: Arc<dyn Clock>,
    cell: Arc<ServiceCell>,
    grpc: TcpListener,
    http: TcpListener,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

impl App {
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        // Before binding: a TLS file that does not load stops the start, naming it.
        let tls = config
            .tls
            .clone()
            .map(listen::Tls::load)
            .transpose()?
            .map(Arc::new);
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC to {}", config.grpc_addr))?;
        let http = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP to {}", config.http_addr))?;
        Ok(Self {
            grpc_addr: grpc.local_addr()?,
            http_addr: http.local_addr()?,
            config: config.clone(),
            tls,
            clock,
            cell: Arc::new(ServiceCell::default()),
            grpc,
            http,
        })
    }

    /// The service, once the store has been opened (see [`ServiceCell::wait`]).
    pub fn service_cell(&self) -> Arc<ServiceCell> {
        self.cell.clone()
    }

    /// Serves until `shutdown` completes: then health turns NOT_SERVING, in-flight calls finish,
    /// and this returns. Fails early only if the store is reachable but unusable (a wrong master
    /// key, a failed migration).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        let (ready_tx, ready) = watch::channel(false);
        let serving = Serving {
            reporter,
            ready: Arc::new(ready_tx),
        };
        serving.set(false).await;
        let metrics = crate::telemetry::metrics();

        let (stop_tx, stop_rx) = watch::channel(false);
        let announcer = serving.clone();
        tokio::spawn(async move {
            shutdown.await;
            info!("shutting down: finishing in-flight calls");
            let _ = stop_tx.send(true);
            announcer.set(false).await;
        });
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };

        info!(
            grpc = %self.grpc_addr,
            http = %self.http_addr,
            tls = self.tls.is_some(),
            mtls = self.config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            "latchkey listening; serving once the store is reached"
        );
        let limits = self.config.connections;
        // Dropped when this returns, which stops it.
        let mut tls_files = JoinSet::new();
        if let Some(tls) = &self.tls {
            tls_files.spawn(tls.clone().follow_files());
        }
        let grpc_server = grpc::router(
            self.cell.clone(),
            health,
            stop_rx.clone(),
            Arc::new(self.config.callers.clone()),
        )?
        .serve_with_incoming_shutdown(
            listen::grpc_incoming(self.grpc, limits.grpc, self.tls.clone()),
            stopped(stop_rx.clone()),
        );
        let http_server = listen::serve_http(
            self.http,
            http::router(self.cell.clone(), metrics.clone(), ready),
            limits.http,
            self.tls.clone(),
            stop_rx.clone(),
        );
        let servers = async {
            let (grpc_result, http_result) = tokio::join!(grpc_server, http_server);
            grpc_result.context("gRPC server")?;
            http_result.context("HTTP server")
        };
        let grace = self.config.shutdown_grace;
        let addrs = (self.grpc_addr, self.http_addr);
        let starter = start(
            self.config,
            self.clock,
            self.cell,
            serving,
            stop_rx.clone(),
            metrics,
            addrs,
        );
        // Streams (WatchRevocations, Health/Watch) may never end by themselves: in-flight calls get
        // the shutdown grace after the signal, then the remaining connections are dropped.
        let deadline = async {
            stopped(stop_rx).await;
            tokio::time::sleep(grace).await;
            warn!("shutdown grace period over: closing the remaining connections");
        };
        // `start` returns only on a fatal error; when the servers stop first, dropping it ends the
        // background tasks it owns.
        let result = tokio::select! {
            served = servers => served,
            failed = starter => Err(failed),
            () = deadline => Ok(()),
        };
        info!("stopped");
        result
    }
}

/// gRPC health and HTTP readiness, switched together: a probe reads the state the health check
/// last found and never reaches the store itself.
#[derive(Clone)]
struct Serving {
    reporter: HealthReporter,
    ready: Arc<watch::Sender<bool>>,
}

impl Serving {
    /// Readiness first, so that whoever sees health SERVING also finds `/readyz` ready.
    async fn set(&self, serving: bool) {
        self.ready.send_replace(serving);
        grpc::set_serving(&self.reporter, serving).await;
    }
}

/// Sets up the data directory, opens the service (retrying while the store is unreachable), then
/// runs the background tasks. Returns only with a fatal error.
async fn start(
    config: Config,
    clock: Arc<dyn Clock>,
    cell: Arc<ServiceCell>,
    serving: Serving,
    stop: watch::Receiver<bool>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    (grpc_addr, http_addr): (SocketAddr, SocketAddr),
) -> anyhow::Error {
    if let Err(e) = config.data_dir.bootstrap() {
        return e;
    }
    let periods = config.periods;
    let service = loop {
        let opened = async {
            let service = open(&config, clock.clone(), Mode::Create).await?;
            service.ensure_signing_key().await?;
            anyhow::Ok(service)
        };
        match opened.await {
            Ok(service) => break service,
            Err(e) if unreachable(&e) => {
                warn!(error = %format!("{e:#}"), "store unreachable; retrying");
                tokio::time::sleep(periods.health_check).await;
            }
            Err(e) => return e,
        }
    };
    if !*stop.borrow() {
        serving.set(true).await;
    }
    cell.set(service.clone());
    info!(grpc = %grpc_addr, http = %http_addr, "latchkey serving; store reached, ready");
    let mut tasks = JoinSet::new();
    spawn_background(&mut tasks, service.clone(), metrics, &periods);
    // Health follows the store: NOT_SERVING while it does not answer, and from shutdown on.
    let mut healthy_before = true;
    loop {
        tokio::time::sleep(periods.health_check).await;
        let ping = tokio::time::timeout(periods.health_check, service.ping()).await;
        let healthy = matches!(ping, Ok(Ok(())));
        if *stop.borrow() {
            std::future::pending::<()>().await;
        }
        if healthy_before != healthy {
            if healthy {
                info!("store reachable again: health SERVING");
            } else {
                warn!("store unreachable: health NOT_SERVING");
            }
            serving.set(healthy).await;
            healthy_before = healthy;
        }
    }
}

fn spawn_background(
    tasks: &mut JoinSet<()>,
    service: Arc<Service>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    periods: &Periods,
) {
    tasks.spawn(service.clone().follow_revocations(periods.revocation_sync));
    tasks.spawn(service.clone().follow_events());
    let s = service.clone();
    tasks.spawn(every(periods.key_sync, move || {
        let s = s.clone();
        async move {
            if let Err(e) = s.sync_keys().await {
                warn!(error = %e.chain(), "signing key sync failed");
            }
        }
    }));
    let s = service.clone();
    tasks.spawn(every(periods.housekeeping, move || {
        let s = s.clone();
        async move {
            match s.housekeeping().await {
                Ok(0) => {}
                Ok(purged) => info!(purged, "housekeeping"),
                Err(e) => warn!(error = %e.chain(), "housekeeping failed"),
            }
        }
    }));
    tasks.spawn(every(periods.gauge_refresh, move || {
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
