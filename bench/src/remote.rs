//! Runs against a server: open the connections, prepare each task's state (the logins happen
//! here, before the clock starts), then let every task call in a loop until the window closes.

use std::{fs, time::Instant};

use anyhow::{Context as _, bail};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use latchkey::grpc::pb::{self, auth_service_client::AuthServiceClient};
use tokio::task::JoinSet;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_client::HealthClient;

use crate::{
    args::{Args, Op},
    calls::{Caller, check_request, kind},
    server_cpu,
    tally::{Summary, Tally, Window},
};

/// Logins made at once while opening the refresh chains: well under the server's admission
/// bound (eight waiting per hashing thread), so that none is turned away as `OVERLOADED`.
const SETUP_LOGINS_IN_FLIGHT: usize = 4;

/// Connects, prepares and runs `args.op` against `args.target`.
pub async fn run(args: &Args) -> anyhow::Result<Summary> {
    // The password first: a missing one is refused before any connection is made.
    let login = if args.op.logs_in() {
        Some(pb::LoginRequest {
            username: args.user.clone(),
            password: args.password()?,
            ..Default::default()
        })
    } else {
        None
    };
    let login = || login.clone().unwrap_or_default();
    let channels = connect(args).await?;
    let channel = |i: usize| channels[i % channels.len()].clone();
    let conc = args.conc as usize;
    let callers: Vec<Caller> = match args.op {
        Op::Health => (0..conc)
            .map(|i| Caller::Health(HealthClient::new(channel(i))))
            .collect(),
        Op::Introspect => {
            let token = first_login(channel(0), login()).await?.access_token;
            (0..conc)
                .map(|i| Caller::Introspect {
                    auth: AuthServiceClient::new(channel(i)),
                    token: token.clone(),
                })
                .collect()
        }
        Op::Check => {
            let request = Box::new(check_request(
                &first_login(channel(0), login()).await?.access_token,
            ));
            (0..conc)
                .map(|i| Caller::Check {
                    authz: AuthorizationClient::new(channel(i)),
                    request: request.clone(),
                })
                .collect()
        }
        Op::Refresh => open_chains(&channels, login(), conc).await?,
        Op::Login => (0..conc)
            .map(|i| Caller::Login {
                auth: AuthServiceClient::new(channel(i)),
                request: login(),
            })
            .collect(),
        Op::Argon2 | Op::Argon2Plain | Op::Eddsa => bail!("--op {} runs locally", args.op.name()),
    };
    let window = Window::starting_now(args.warmup, args.duration);
    let server_cpu = args
        .server_pid
        .map(|pid| tokio::spawn(server_cpu::over(window.measure_from, window.until, pid)));
    let mut summary = drive(callers, window).await;
    if let Some(watch) = server_cpu {
        summary.cpu = Some(watch.await??);
    }
    Ok(summary)
}

/// `args.conns` HTTP/2 connections to the target, each opened now (a wrong address or a refused
/// handshake fails here, not as a run of errors).
async fn connect(args: &Args) -> anyhow::Result<Vec<Channel>> {
    let mut endpoint = Endpoint::from_shared(args.target.clone())
        .with_context(|| format!("--target {} is not a URL", args.target))?
        .connect_timeout(std::time::Duration::from_secs(5));
    let https = args.target.starts_with("https://");
    match (&args.ca, https) {
        (Some(ca), true) => {
            let read = |path: &std::path::Path| {
                fs::read(path).with_context(|| format!("reading {}", path.display()))
            };
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
            if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            endpoint = endpoint.tls_config(tls).context("TLS settings")?;
        }
        (None, true) => bail!("an https target needs --ca FILE (the CA of its certificate)"),
        (Some(_), false) => bail!("--ca is for https targets; {} is not one", args.target),
        (None, false) if args.cert.is_some() => bail!("--cert is for https targets"),
        (None, false) => {}
    }
    let mut channels = Vec::with_capacity(args.conns as usize);
    for _ in 0..args.conns {
        let channel = endpoint.connect().await;
        channels.push(channel.with_context(|| format!("connecting to {}", args.target))?);
    }
    Ok(channels)
}

/// One login before the run; a refusal stops the run before it starts.
async fn first_login(
    channel: Channel,
    request: pb::LoginRequest,
) -> anyhow::Result<pb::TokenResponse> {
    let answer = AuthServiceClient::new(channel).login(request).await;
    match answer {
        Ok(pair) => Ok(pair.into_inner()),
        Err(status) => bail!("login refused: {} ({})", kind(&status), status.message()),
    }
}

/// One refresh chain per task, each opened by a login of its own.
async fn open_chains(
    channels: &[Channel],
    login: pb::LoginRequest,
    conc: usize,
) -> anyhow::Result<Vec<Caller>> {
    let mut callers = Vec::with_capacity(conc);
    while callers.len() < conc {
        let mut logins = JoinSet::new();
        for i in callers.len()..conc.min(callers.len() + SETUP_LOGINS_IN_FLIGHT) {
            let (channel, login) = (channels[i % channels.len()].clone(), login.clone());
            logins.spawn(async move {
                let pair = first_login(channel.clone(), login.clone()).await?;
                anyhow::Ok(Caller::Refresh {
                    auth: AuthServiceClient::new(channel),
                    login,
                    token: Some(pair.refresh_token),
                })
            });
        }
        for caller in logins.join_all().await {
            callers.push(caller?);
        }
    }
    Ok(callers)
}

/// Every caller on a task of its own, calling until the window closes; the merged record.
async fn drive(callers: Vec<Caller>, window: Window) -> Summary {
    let mut tasks = JoinSet::new();
    for mut caller in callers {
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < window.until {
                if let Err(failure) = caller.prepare().await {
                    tally.record(&window, Instant::now(), Err(failure));
                    continue;
                }
                let started = Instant::now();
                let outcome = caller.call().await;
                tally.record(&window, started, outcome);
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(tally) => total.merge(tally),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    total.summary(Instant::now().saturating_duration_since(window.measure_from))
}
