//! Login throughput and server memory: `cargo bench --bench login_memory`. Starts the real server
//! in-process at default settings (SQLite in a temp dir, argon2id at OWASP's cost, one hash at a
//! time per CPU) and drives Login over gRPC on loopback with 8, 16 and 32 calls in flight, each
//! task logging in as its own user (so the per-name throttle stays out of it).
//!
//! Machines here are noisy, so the Login rate is given as a ratio to the raw argon2id rate measured
//! in the same run: one thread per CPU hashing with the argon2 crate directly at the same
//! parameters, each in memory of its own reused from hash to hash and laid out as the server's
//! workers lay theirs out, on 2 MiB pages where the kernel grants them (the hash as the server
//! runs it, with none of the server around it). That baseline runs in a child process (this
//! binary with `--raw-argon2`), so that its memory never counts as the server's, just before and
//! just after each cell: a cell's ratio is to the mean of the two, which follows the machine's
//! load as it changes.
//!
//! Memory is the process's peak resident set (`VmHWM` in `/proc/self/status`) at start, before the
//! logins (users created) and after each cell; the load generator shares the process and adds its
//! own few MiB. Results and the command are recorded in BENCHMARKS.md.

mod server;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use argon2::{Argon2, Block, Params, password_hash::generate_salt};
use futures_util::future::join_all;
use latchkey::{
    config::ConfigArgs,
    crypto::password,
    domain::types::{Password, Username},
    grpc::pb::{self, auth_service_client::AuthServiceClient},
    service::Admin,
};
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

const RAW_FLAG: &str = "--raw-argon2";
/// Hashes per thread in each raw measurement (after one to warm up).
const RAW_PER_THREAD: usize = 24;
const PASSWORD: &str = "correct horse battery staple";
/// (calls in flight, logins) per cell.
const CELLS: [(usize, usize); 3] = [(8, 160), (16, 200), (32, 240)];

fn main() -> anyhow::Result<()> {
    let cpus = thread::available_parallelism()?.get();
    if std::env::args().any(|a| a == RAW_FLAG) {
        println!("{}", raw_argon2(cpus));
        return Ok(());
    }
    let cells = tokio::runtime::Runtime::new()?.block_on(logins())?;
    println!("raw/s: argon2id on {cpus} threads, memory reused, around each cell");
    println!();
    println!(
        "{:<18} {:>7} {:>9} {:>9} {:>7} {:>11} {:>13}",
        "in flight", "logins", "logins/s", "raw/s", "× raw", "OVERLOADED", "peak RSS MiB"
    );
    for cell in &cells {
        let (label, logins, rate, raw, ratio, overloaded) = match &cell.load {
            None => (
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
            ),
            Some(load) => (
                load.in_flight.to_string(),
                load.logins.to_string(),
                format!("{:.1}", load.rate),
                format!("{:.1}", load.raw),
                format!("{:.2}", load.rate / load.raw),
                load.overloaded.to_string(),
            ),
        };
        println!(
            "{:<18} {:>7} {:>9} {:>9} {:>7} {:>11} {:>13.1}",
            format!("{label} ({})", cell.name),
            logins,
            rate,
            raw,
            ratio,
            overloaded,
            cell.peak_rss_mib
        );
    }
    Ok(())
}

/// `threads` threads hashing at OWASP's parameters, in hashes per second.
fn raw_argon2(threads: usize) -> f64 {
    let barrier = std::sync::Barrier::new(threads + 1);
    let hash = |blocks: &mut [Block]| {
        let mut out = [0u8; 32];
        Argon2::default()
            .hash_password_into_with_memory(PASSWORD.as_bytes(), &generate_salt(), &mut out, blocks)
            .expect("hash");
    };
    // The scope returns when every thread has finished, with the time the timed hashes began.
    let started = thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut blocks = password::blocks(Params::default().block_count());
                hash(&mut blocks);
                barrier.wait();
                for _ in 0..RAW_PER_THREAD {
                    hash(&mut blocks);
                }
            });
        }
        barrier.wait();
        Instant::now()
    });
    (threads * RAW_PER_THREAD) as f64 / started.elapsed().as_secs_f64()
}

/// The raw rate, measured by this binary in a child process.
async fn raw_in_child() -> anyhow::Result<f64> {
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .arg(RAW_FLAG)
        .output()
        .await?;
    anyhow::ensure!(output.status.success(), "the raw argon2 child failed");
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

/// A point of the run: its peak RSS, and the load driven just before, if any.
struct Cell {
    name: &'static str,
    load: Option<Load>,
    peak_rss_mib: f64,
}

struct Load {
    in_flight: usize,
    logins: usize,
    rate: f64,
    /// The mean of the raw rates measured just before and just after.
    raw: f64,
    overloaded: usize,
}

impl Cell {
    fn mark(name: &'static str, load: Option<Load>) -> anyhow::Result<Self> {
        Ok(Self {
            name,
            load,
            peak_rss_mib: peak_rss_mib()?,
        })
    }
}

async fn logins() -> anyhow::Result<Vec<Cell>> {
    let mut cells = vec![Cell::mark("server started", None)?];
    let dir = tempfile::tempdir()?;
    let args = ConfigArgs {
        data_dir: Some(dir.path().display().to_string()),
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let (addr, service) = server::start(args).await?;
    let most = CELLS.iter().map(|&(n, _)| n).max().unwrap_or(0);
    for i in 0..most {
        let name = Username::parse(&format!("bench{i}"))?;
        let password = Password::parse(PASSWORD.into())?;
        service
            .create_user(&name, password, vec![], &Admin::command_line())
            .await?;
    }
    cells.push(Cell::mark("users created", None)?);
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let auth = AuthServiceClient::new(channel);
    let mut raw_before = raw_in_child().await?;
    for (in_flight, logins) in CELLS {
        let (rate, overloaded) = drive(&auth, in_flight, logins).await;
        let raw_after = raw_in_child().await?;
        let load = Load {
            in_flight,
            logins,
            rate,
            raw: (raw_before + raw_after) / 2.0,
            overloaded,
        };
        cells.push(Cell::mark("logins", Some(load))?);
        raw_before = raw_after;
    }
    Ok(cells)
}

/// `total` logins with `in_flight` calls at a time: logins per second, and how many calls were
/// answered `OVERLOADED` (retried after 10 ms, as a client backing off would).
async fn drive(auth: &AuthServiceClient<Channel>, in_flight: usize, total: usize) -> (f64, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let overloaded = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    join_all((0..in_flight).map(|task| {
        let (mut auth, next, overloaded) = (auth.clone(), next.clone(), overloaded.clone());
        async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                loop {
                    let request = pb::LoginRequest {
                        username: format!("bench{task}"),
                        password: PASSWORD.into(),
                        ..Default::default()
                    };
                    match auth.login(request).await {
                        Ok(_) => break,
                        Err(status) if reason(&status) == "OVERLOADED" => {
                            overloaded.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err(status) => panic!("login: {status:?}"),
                    }
                }
            }
        }
    }))
    .await;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    (rate, overloaded.load(Ordering::Relaxed))
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// The process's peak resident set so far, in MiB.
fn peak_rss_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))?;
    Ok(kib / 1024.0)
}
