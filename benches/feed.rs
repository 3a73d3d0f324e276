//! Revocation feed benchmark: `cargo bench --bench feed`. Starts the real server in-process (SQLite
//! in a temp dir) and opens 10,000 WatchRevocations streams to it on loopback, over enough HTTP/2
//! connections for the server's limit of 256 streams on each. The subscribers run on a runtime of
//! their own (two threads, as the server's), as verifiers run in processes of their own: they
//! share the machine's cores with the server, not its scheduler. Revocations are then made one by
//! one through Revoke while they all listen, and each subscriber notes when each event reached it.
//! The streams stay open until every subscriber has every event, as verifiers' streams stay open.
//!
//! The figure is the delay from the Revoke call being made (before its commit, so the delay from
//! the commit is never more than this) to receipt at each subscriber: p50, p99 and max over every
//! (subscriber, event) pair. The baseline, measured in the same run, is the same delay for a single
//! subscriber. Target: p99 under 100 ms with 10,000.
//!
//! Results and the command are recorded in BENCHMARKS.md.

mod server;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use latchkey::{
    config::ConfigArgs,
    domain::types::{ClientId, Device, Password, Username},
    grpc::pb::{self, auth_service_client::AuthServiceClient, revocation_event::Target},
    service::{Admin, LoginCommand, Service},
};
use tokio::{runtime::Handle, sync::Barrier, task::JoinSet};
use tonic::transport::Channel;

const SUBSCRIBERS: usize = 10_000;
/// Streams per HTTP/2 connection: under the server's 256.
const STREAMS_PER_CONNECTION: usize = 200;
/// Revocations made while the subscribers listen, one at a time.
const REVOCATIONS: usize = 20;
/// Between two revocations: each is delivered on a quiet feed.
const SPACING: Duration = Duration::from_millis(200);
/// The whole run stops with an error past this.
const BUDGET: Duration = Duration::from_secs(55);
const PASSWORD: &str = "correct horse battery staple";

/// When each event (by the session it revoked) reached one subscriber.
type Receipts = Vec<(String, Instant)>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("subscribers")
        .enable_all()
        .build()?;
    let run = tokio::time::timeout(BUDGET, run(clients.handle()))
        .await
        .context("the benchmark ran over its time budget");
    clients.shutdown_background();
    run?
}

async fn run(clients: &Handle) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (addr, service) = start(dir.path()).await?;
    let revoker = AuthServiceClient::new(connect(addr).await?);
    let mut sessions = Vec::new();
    for _ in 0..2 * REVOCATIONS {
        sessions.push(login(&service).await?);
    }
    let (alone, together) = sessions.split_at(REVOCATIONS);
    let baseline = measure(clients, addr, &service, 1, &revoker, alone).await?;
    let started = Instant::now();
    let fleet = measure(clients, addr, &service, SUBSCRIBERS, &revoker, together).await?;
    println!(
        "{SUBSCRIBERS} subscribers opened, fed {REVOCATIONS} revocations and closed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    report(&baseline, &fleet);
    Ok(())
}

/// The server, serving, with one user; its gRPC address and its service.
async fn start(dir: &std::path::Path) -> anyhow::Result<(std::net::SocketAddr, Arc<Service>)> {
    let args = ConfigArgs {
        data_dir: Some(dir.display().to_string()),
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        // Logins only open the sessions to revoke: cheap hashing keeps them out of the way.
        password_memory_kib: Some(1024),
        password_iterations: Some(1),
        ..Default::default()
    };
    let (addr, service) = server::start(args).await?;
    let password = Password::parse(PASSWORD.into())?;
    service
        .create_user(
            &Username::parse("bench")?,
            password,
            vec![],
            &Admin::command_line(),
        )
        .await?;
    Ok((addr, service))
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

/// A fresh session, opened through the service directly: (session id, refresh token).
async fn login(service: &Service) -> anyhow::Result<(String, String)> {
    let command = LoginCommand {
        username: Username::parse("bench")?,
        password: Password::parse(PASSWORD.into())?,
        client_id: ClientId::parse(String::new())?,
        device: Device::parse(String::new())?,
        scopes: Vec::new(),
        ip: String::new(),
    };
    let pair = service.login(command).await?;
    Ok((pair.session_id, pair.refresh_token.into_inner()))
}

/// Opens `subscribers` streams on `clients`, revokes `sessions` one by one once they are all caught
/// up, and returns every delay from a Revoke call being made to an event's receipt.
async fn measure(
    clients: &Handle,
    addr: std::net::SocketAddr,
    service: &Service,
    subscribers: usize,
    revoker: &AuthServiceClient<Channel>,
    sessions: &[(String, String)],
) -> anyhow::Result<Vec<Duration>> {
    let ready = Arc::new(Barrier::new(subscribers + 1));
    let open = clients.spawn(open(addr, subscribers, sessions.len(), ready.clone()));
    let mut listening = open.await??;
    ready.wait().await;
    let mut made = HashMap::new();
    for (session_id, refresh_token) in sessions {
        made.insert(session_id.clone(), Instant::now());
        revoke(revoker, refresh_token).await?;
        tokio::time::sleep(SPACING).await;
    }
    let mut delays = Vec::with_capacity(subscribers * sessions.len());
    while let Some(receipts) = listening.join_next().await {
        for (session_id, at) in receipts?? {
            let made = made.get(&session_id).context("an unknown event")?;
            delays.push(at.duration_since(*made));
        }
    }
    // The streams are closed: wait for the server to have let them go before the next phase.
    while service.feed_stats().watchers > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(delays)
}

/// `subscribers` streams, each on a task of the runtime this runs on, `STREAMS_PER_CONNECTION` to a
/// connection; see `subscribe`.
async fn open(
    addr: std::net::SocketAddr,
    subscribers: usize,
    count: usize,
    ready: Arc<Barrier>,
) -> anyhow::Result<JoinSet<anyhow::Result<Receipts>>> {
    let mut listening = JoinSet::new();
    let fed = Arc::new(Barrier::new(subscribers));
    for first in (0..subscribers).step_by(STREAMS_PER_CONNECTION) {
        let channel = connect(addr).await?;
        for _ in first..subscribers.min(first + STREAMS_PER_CONNECTION) {
            listening.spawn(subscribe(
                channel.clone(),
                count,
                ready.clone(),
                fed.clone(),
            ));
        }
    }
    Ok(listening)
}

/// One subscriber, on a task of its own as each verifier runs its feed: catches up (its first
/// heartbeat), says it is `ready`, then notes when each of the next `count` events arrives, and
/// keeps its stream open until every subscriber has been `fed` them all.
async fn subscribe(
    channel: Channel,
    count: usize,
    ready: Arc<Barrier>,
    fed: Arc<Barrier>,
) -> anyhow::Result<Receipts> {
    let request = pb::WatchRevocationsRequest { after_seq: 0 };
    let mut client = AuthServiceClient::new(channel);
    let mut stream = client.watch_revocations(request).await?.into_inner();
    // Events of earlier phases come first: they are not timed.
    while stream
        .message()
        .await?
        .context("stream ended")?
        .target
        .is_some()
    {}
    ready.wait().await;
    let mut receipts = Vec::with_capacity(count);
    while receipts.len() < count {
        let event = stream.message().await?.context("stream ended")?;
        if let Some(Target::SessionId(id)) = event.target {
            receipts.push((id, Instant::now()));
        }
    }
    // Open until every subscriber has every event, as a verifier's stream stays open: thousands of
    // streams closing must not race the last event's delivery to the others.
    fed.wait().await;
    drop(stream);
    Ok(receipts)
}

async fn revoke(client: &AuthServiceClient<Channel>, token: &str) -> anyhow::Result<()> {
    let request = pb::RevokeRequest {
        token: token.to_owned(),
        token_type_hint: String::new(),
    };
    client.clone().revoke(request).await?;
    Ok(())
}

/// The nearest-rank percentile `p` (0 to 100) of sorted delays.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn report(baseline: &[Duration], fleet: &[Duration]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<14} {:>9} {:>10} {:>10} {:>10}",
        "subscribers", "receipts", "p50 ms", "p99 ms", "max ms"
    );
    let mut p99s = Vec::new();
    for (name, delays) in [("1 (baseline)", baseline), ("10,000", fleet)] {
        let mut sorted = delays.to_vec();
        sorted.sort();
        p99s.push(percentile(&sorted, 99));
        println!(
            "{:<14} {:>9} {:>10.3} {:>10.3} {:>10.3}",
            name,
            sorted.len(),
            ms(percentile(&sorted, 50)),
            ms(percentile(&sorted, 99)),
            ms(*sorted.last().unwrap_or(&Duration::ZERO)),
        );
    }
    let target = Duration::from_millis(100);
    match p99s[1].checked_sub(target) {
        None => println!("target p99 < 100 ms with {SUBSCRIBERS} subscribers: met"),
        Some(over) => println!(
            "target p99 < 100 ms with {SUBSCRIBERS} subscribers: missed by {:.1} ms",
            ms(over)
        ),
    }
}
