//! Settings, layered: defaults, then the optional TOML file (`--config`), then `LATCHKEY_*`
//! variables, then flags. [`ConfigArgs`] is the one list of settings; clap reads flags and
//! variables into it when the command line is parsed, and [`Config::resolve`] lays it over the
//! file, fills in the defaults and checks every value, naming the setting by its variable when one
//! is refused. Durations are humantime strings ("15m", "14d"). Secrets are redacted from `Debug`.
//! Somewhat over 300 lines: the defaults and checks of every setting sit together here, so that
//! one read shows what each setting accepts (the connection settings are in `connections.rs`).

mod args;
mod check;
mod connections;
#[cfg(test)]
mod tests;
mod tls;

use std::{net::SocketAddr, path::Path, time::Duration};

use anyhow::{Context, anyhow, bail};

pub use self::args::ConfigArgs;
use self::check::{address, at_least, duration, millis, non_empty, period, show, within};
use crate::{
    crypto::{keys::SigningAlg, password::Cost, seal::MasterKey},
    data_dir::DataDir,
    domain::{caller::Callers, family::Lifetimes, secret::Secret, throttle::Policy},
    listen::{Connections, TlsFiles},
    service::{FeedLimits, Settings},
    telemetry::{self, LogFormat, Logging},
};

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the SQLite file and the master key live, and who may create them.
    pub data_dir: DataDir,
    pub database_url: Secret<String>,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Connection caps and handshake deadlines of both ports.
    pub connections: Connections,
    /// TLS on both ports (and mTLS on the gRPC port); `None`: plaintext.
    pub tls: Option<TlsFiles>,
    /// Who may make the calls reserved to services and administrators.
    pub callers: Callers,
    pub settings: Settings,
    pub periods: Periods,
    /// How long in-flight calls may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    pub log: Logging,
}

/// How often the server's background work runs: settings so that tests can shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Revocations made by other processes are picked up (on PostgreSQL, the safety net under
    /// NOTIFY).
    pub revocation_sync: Duration,
    /// The signing keys are re-read (`keys rotate` reaches servers within this, well inside the
    /// 5 s promised).
    pub key_sync: Duration,
    /// Expired sessions and old records are purged.
    pub housekeeping: Duration,
    /// The store is pinged for the health status, and opening it is retried.
    pub health_check: Duration,
    /// The active-session gauge and the metrics recorder's upkeep.
    pub gauge_refresh: Duration,
}

/// The largest argon2id memory cost accepted, in KiB: 4 GiB per hash is already far beyond any
/// sensible setting, and a typo above it would exhaust memory at the first login.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// The most password hashes at once: each holds its memory cost, and 8× this are admitted in all
/// (running or waiting).
const MAX_HASH_CONCURRENCY: usize = 1024;
/// The most WatchRevocations streams per process: each holds a task and a buffer.
const MAX_WATCHERS: usize = 1_000_000;

impl Config {
    /// `args` over the file it names, over the defaults; every value checked. Reads no
    /// environment variable itself: those came into `args` when the command line was parsed.
    pub fn resolve(args: ConfigArgs) -> anyhow::Result<Self> {
        let args = match args.config.clone() {
            Some(path) => args.over(read_file(&path)?)?,
            None => args,
        };
        let data_dir = non_empty(
            "LATCHKEY_DATA_DIR",
            args.data_dir.clone(),
            "./latchkey-data",
        )?;
        let database_url = match &args.database_url {
            Some(url) => checked_database_url(url)?,
            None => Secret::new(format!("sqlite://{data_dir}/latchkey.db")),
        };
        let master_key = args
            .master_key
            .as_ref()
            .map(|key| MasterKey::from_base64(key.expose()))
            .transpose()
            .context("LATCHKEY_MASTER_KEY")?;
        let tls = tls::tls(&args)?;
        let callers = tls::callers(&args, tls.as_ref())?;
        Ok(Self {
            data_dir: DataDir::new(data_dir, master_key, args.database_url.is_none()),
            database_url,
            grpc_addr: address(
                "LATCHKEY_GRPC_ADDR",
                args.grpc_addr.clone(),
                "127.0.0.1:50051",
            )?,
            http_addr: address(
                "LATCHKEY_HTTP_ADDR",
                args.http_addr.clone(),
                "127.0.0.1:8080",
            )?,
            connections: connections::connections(&args)?,
            tls,
            callers,
            settings: settings(&args)?,
            periods: periods(&args)?,
            shutdown_grace: duration("LATCHKEY_SHUTDOWN_GRACE", args.shutdown_grace, "10s")?,
            log: logging(args.log, args.log_format)?,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<ConfigArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("LATCHKEY_CONFIG: reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("LATCHKEY_CONFIG: in {}", path.display()))
}

/// The URL names a store latchkey has. It is not shown: it may hold a password.
fn checked_database_url(url: &Secret<String>) -> anyhow::Result<Secret<String>> {
    let scheme = url.expose().split_once(':').map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("sqlite" | "postgres" | "postgresql")) {
        bail!("LATCHKEY_DATABASE_URL must be a sqlite:// or postgres:// URL");
    }
    Ok(url.clone())
}

fn settings(args: &ConfigArgs) -> anyhow::Result<Settings> {
    let leeway = duration("LATCHKEY_CLOCK_LEEWAY", args.clock_leeway.clone(), "5s")?;
    if leeway.subsec_nanos() != 0 {
        // Token times are whole seconds: a fraction would be silently dropped.
        bail!(
            "LATCHKEY_CLOCK_LEEWAY={} must be whole seconds, such as 5s",
            show(leeway)
        );
    }
    let alg = args.signing_alg.clone().unwrap_or_else(|| "EdDSA".into());
    let signing_alg =
        SigningAlg::parse(&alg).map_err(|e| anyhow!("LATCHKEY_SIGNING_ALG={alg:?}: {e}"))?;
    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    Ok(Settings {
        issuer: non_empty("LATCHKEY_ISSUER", args.issuer.clone(), "latchkey")?,
        audience: non_empty("LATCHKEY_AUDIENCE", args.audience.clone(), "latchkey")?,
        lifetimes: lifetimes(args)?,
        leeway_secs: i64::try_from(leeway.as_secs())
            .context("LATCHKEY_CLOCK_LEEWAY is too long")?,
        throttle: Policy::default(),
        signing_alg,
        password_cost: password_cost(args)?,
        hash_concurrency: within(
            "LATCHKEY_HASH_CONCURRENCY",
            args.hash_concurrency,
            cpus,
            (1, MAX_HASH_CONCURRENCY),
        )?,
        feed: FeedLimits {
            max_watchers: within(
                "LATCHKEY_MAX_WATCHERS",
                args.max_watchers,
                10_000,
                (1, MAX_WATCHERS),
            )?,
            stall_timeout: at_least(
                "LATCHKEY_SLOW_WATCHER_TIMEOUT",
                duration(
                    "LATCHKEY_SLOW_WATCHER_TIMEOUT",
                    args.slow_watcher_timeout.clone(),
                    "5s",
                )?,
                Duration::from_millis(10),
            )?,
        },
        login_failures_per_address: within(
            "LATCHKEY_LOGIN_FAILURES_PER_ADDRESS",
            args.login_failures_per_address,
            100,
            (0, 1_000_000),
        )?,
        max_sessions_per_user: within(
            "LATCHKEY_MAX_SESSIONS_PER_USER",
            args.max_sessions_per_user,
            100,
            (1, 100_000),
        )?,
        event_retention: {
            const RETENTION: &str = "LATCHKEY_EVENT_RETENTION";
            let retention = duration(RETENTION, args.event_retention.clone(), "90d")?;
            millis(
                RETENTION,
                at_least(RETENTION, retention, Duration::from_secs(3600))?,
            )?
        },
    })
}

/// Each lifetime at least a second, and in an order that makes sense: a refresh token that died
/// before the access token it renews, or a grace window that outlives the token, is a mistake.
fn lifetimes(args: &ConfigArgs) -> anyhow::Result<Lifetimes> {
    const ACCESS: &str = "LATCHKEY_ACCESS_TTL";
    const REFRESH: &str = "LATCHKEY_REFRESH_TTL";
    const SESSION: &str = "LATCHKEY_SESSION_MAX_AGE";
    const GRACE: &str = "LATCHKEY_REUSE_GRACE";
    let access = duration(ACCESS, args.access_ttl.clone(), "15m")?;
    let access = at_least(ACCESS, access, Duration::from_secs(1))?;
    let refresh = duration(REFRESH, args.refresh_ttl.clone(), "14d")?;
    let session = duration(SESSION, args.session_max_age.clone(), "30d")?;
    let grace = duration(GRACE, args.reuse_grace.clone(), "10s")?;
    for (var, value) in [(REFRESH, refresh), (SESSION, session)] {
        if value < access {
            bail!(
                "{var}={} must be at least {ACCESS}={}",
                show(value),
                show(access)
            );
        }
    }
    if grace >= refresh {
        bail!(
            "{GRACE}={} must be shorter than {REFRESH}={} (0s disables it)",
            show(grace),
            show(refresh)
        );
    }
    Ok(Lifetimes {
        access_ttl: millis(ACCESS, access)?,
        refresh_ttl: millis(REFRESH, refresh)?,
        session_max_age: millis(SESSION, session)?,
        reuse_grace: millis(GRACE, grace)?,
    })
}

fn password_cost(args: &ConfigArgs) -> anyhow::Result<Cost> {
    let default = Cost::default();
    // argon2 needs 8 KiB per lane; below that it fails at the first hash, as an internal error.
    let min_memory = 8 * default.parallelism;
    let memory_kib = within(
        "LATCHKEY_PASSWORD_MEMORY_KIB",
        args.password_memory_kib,
        default.memory_kib,
        (min_memory, MAX_MEMORY_KIB),
    )?;
    let iterations = args.password_iterations.unwrap_or(default.iterations);
    if iterations == 0 {
        bail!(
            "LATCHKEY_PASSWORD_ITERATIONS=0 must be at least 1 [default: {}]",
            default.iterations
        );
    }
    Ok(Cost {
        memory_kib,
        iterations,
        parallelism: default.parallelism,
    })
}

fn periods(args: &ConfigArgs) -> anyhow::Result<Periods> {
    Ok(Periods {
        revocation_sync: period(
            "LATCHKEY_REVOCATION_SYNC_INTERVAL",
            args.revocation_sync_interval.clone(),
            "50ms",
        )?,
        key_sync: period(
            "LATCHKEY_KEY_SYNC_INTERVAL",
            args.key_sync_interval.clone(),
            "1s",
        )?,
        housekeeping: period(
            "LATCHKEY_HOUSEKEEPING_INTERVAL",
            args.housekeeping_interval.clone(),
            "60s",
        )?,
        health_check: period(
            "LATCHKEY_HEALTH_CHECK_INTERVAL",
            args.health_check_interval.clone(),
            "1s",
        )?,
        gauge_refresh: period(
            "LATCHKEY_GAUGE_REFRESH_INTERVAL",
            args.gauge_refresh_interval.clone(),
            "15s",
        )?,
    })
}

fn logging(filter: Option<String>, format: Option<String>) -> anyhow::Result<Logging> {
    let filter = non_empty("LATCHKEY_LOG", filter, "info")?;
    telemetry::check_filter(&filter).map_err(|e| {
        anyhow!("LATCHKEY_LOG={filter:?} is not a log filter such as info,latchkey=debug: {e}")
    })?;
    let format = match format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => bail!("LATCHKEY_LOG_FORMAT={other:?}: expected text or json"),
    };
    Ok(Logging { filter, format })
}

/// A database URL with any password (in the user info or a `password=` parameter) replaced, fit
/// for logs.
pub fn redact_url(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=<redacted>"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url.to_owned(),
    };
    let url = url.as_str();
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:<redacted>{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}
