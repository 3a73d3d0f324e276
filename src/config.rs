//! Settings: each one a flag, a `LATCHKEY_*` environment variable and a key of the optional TOML
//! file (`--config`), in that order of precedence, then the default. Durations are humantime
//! strings ("15m", "14d"). Secrets are redacted from `Debug`.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use crate::{
    crypto::{keys::SigningAlg, password::Cost, seal::MasterKey},
    domain::{UnixMs, family::Lifetimes, throttle::Policy},
    service::Settings,
};

/// The settings as given on the command line or in the environment; unset ones fall back to the
/// TOML file, then to the defaults.
#[derive(Debug, Args, Default, Clone)]
pub struct ConfigArgs {
    /// TOML file with any of the settings below (keys in snake_case, e.g. `grpc_addr`).
    #[arg(long, env = "LATCHKEY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where the SQLite file and the generated master key live [default: ./latchkey-data].
    #[arg(long, env = "LATCHKEY_DATA_DIR", global = true)]
    pub data_dir: Option<String>,
    /// sqlite:// URL [default: sqlite://<data dir>/latchkey.db].
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<Secret>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "LATCHKEY_GRPC_ADDR", global = true)]
    pub grpc_addr: Option<String>,
    /// HTTP listen address: JWKS, health, metrics [default: 127.0.0.1:8080].
    #[arg(long, env = "LATCHKEY_HTTP_ADDR", global = true)]
    pub http_addr: Option<String>,
    /// `iss` of issued tokens [default: latchkey].
    #[arg(long, env = "LATCHKEY_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// `aud` of issued tokens, required of presented ones [default: latchkey].
    #[arg(long, env = "LATCHKEY_AUDIENCE", global = true)]
    pub audience: Option<String>,
    /// Access token lifetime [default: 15m].
    #[arg(long, env = "LATCHKEY_ACCESS_TTL", global = true)]
    pub access_ttl: Option<String>,
    /// Refresh token idle lifetime, renewed by each refresh [default: 14d].
    #[arg(long, env = "LATCHKEY_REFRESH_TTL", global = true)]
    pub refresh_ttl: Option<String>,
    /// Absolute session lifetime from login [default: 30d].
    #[arg(long, env = "LATCHKEY_SESSION_MAX_AGE", global = true)]
    pub session_max_age: Option<String>,
    /// Window in which the just-spent refresh token is a retry, not reuse; 0s disables [default: 10s].
    #[arg(long, env = "LATCHKEY_REUSE_GRACE", global = true)]
    pub reuse_grace: Option<String>,
    /// EdDSA, ES256 or RS256 [default: EdDSA].
    #[arg(long, env = "LATCHKEY_SIGNING_ALG", global = true)]
    pub signing_alg: Option<String>,
    /// Tolerated clock skew on exp/nbf [default: 5s].
    #[arg(long, env = "LATCHKEY_CLOCK_LEEWAY", global = true)]
    pub clock_leeway: Option<String>,
    /// Base64 of 32 random bytes; every replica needs the same [default: generated into the data dir].
    #[arg(
        long,
        env = "LATCHKEY_MASTER_KEY",
        global = true,
        hide_env_values = true
    )]
    pub master_key: Option<Secret>,
    /// argon2id memory cost in KiB [default: 19456].
    #[arg(long, env = "LATCHKEY_PASSWORD_MEMORY_KIB", global = true)]
    pub password_memory_kib: Option<u32>,
    /// argon2id iterations [default: 2].
    #[arg(long, env = "LATCHKEY_PASSWORD_ITERATIONS", global = true)]
    pub password_iterations: Option<u32>,
    /// Password hashes computed at once; more callers wait, beyond 8× this they get OVERLOADED
    /// [default: the number of CPUs].
    #[arg(long, env = "LATCHKEY_HASH_CONCURRENCY", global = true)]
    pub hash_concurrency: Option<usize>,
}

/// The TOML file: the same names as the flags, in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<String>,
    database_url: Option<Secret>,
    grpc_addr: Option<String>,
    http_addr: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    access_ttl: Option<String>,
    refresh_ttl: Option<String>,
    session_max_age: Option<String>,
    reuse_grace: Option<String>,
    signing_alg: Option<String>,
    clock_leeway: Option<String>,
    master_key: Option<Secret>,
    password_memory_kib: Option<u32>,
    password_iterations: Option<u32>,
    hash_concurrency: Option<usize>,
}

/// A setting that may hold a secret (the master key, a database URL with a password): `Debug`
/// never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(self) -> String {
        self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The resolved settings.
#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// `None`: use (or generate) `<data dir>/master.key`.
    pub master_key: Option<MasterKey>,
    pub settings: Settings,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("master_key", &self.master_key)
            .field("settings", &self.settings)
            .finish()
    }
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

fn duration(name: &str, value: Option<String>, default: &str) -> anyhow::Result<UnixMs> {
    let text = value.unwrap_or_else(|| default.to_owned());
    let d: Duration = humantime::parse_duration(&text)
        .with_context(|| format!("{name}: {text:?} is not a duration"))?;
    i64::try_from(d.as_millis()).with_context(|| format!("{name} is too long"))
}

fn address(name: &str, value: Option<String>, default: &str) -> anyhow::Result<SocketAddr> {
    let text = value.unwrap_or_else(|| default.to_owned());
    text.parse()
        .with_context(|| format!("{name}: {text:?} is not an address such as 127.0.0.1:50051"))
}

impl Config {
    pub fn resolve(args: ConfigArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = PathBuf::from(
            args.data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "./latchkey-data".into()),
        );
        let database_url = args
            .database_url
            .or(file.database_url)
            .map(Secret::expose)
            .unwrap_or_else(|| format!("sqlite://{}/latchkey.db", data_dir.display()));
        let lifetimes = Lifetimes {
            access_ttl: duration("access_ttl", args.access_ttl.or(file.access_ttl), "15m")?,
            refresh_ttl: duration("refresh_ttl", args.refresh_ttl.or(file.refresh_ttl), "14d")?,
            session_max_age: duration(
                "session_max_age",
                args.session_max_age.or(file.session_max_age),
                "30d",
            )?,
            reuse_grace: duration("reuse_grace", args.reuse_grace.or(file.reuse_grace), "10s")?,
        };
        if lifetimes.access_ttl < 1000
            || lifetimes.refresh_ttl < 1000
            || lifetimes.session_max_age < 1000
        {
            bail!("access_ttl, refresh_ttl and session_max_age must be at least 1s");
        }
        let signing_alg = SigningAlg::parse(
            &args
                .signing_alg
                .or(file.signing_alg)
                .unwrap_or_else(|| "EdDSA".into()),
        )
        .map_err(anyhow::Error::msg)?;
        let master_key = args
            .master_key
            .or(file.master_key)
            .map(Secret::expose)
            .map(|k| MasterKey::from_base64(&k))
            .transpose()
            .context("LATCHKEY_MASTER_KEY")?;
        let leeway = duration(
            "clock_leeway",
            args.clock_leeway.or(file.clock_leeway),
            "5s",
        )?;
        if leeway % 1000 != 0 {
            // Token times are whole seconds: a fraction would be silently dropped.
            bail!("clock_leeway must be whole seconds, such as 5s");
        }
        let default_cost = Cost::default();
        let settings = Settings {
            issuer: args
                .issuer
                .or(file.issuer)
                .unwrap_or_else(|| "latchkey".into()),
            audience: args
                .audience
                .or(file.audience)
                .unwrap_or_else(|| "latchkey".into()),
            lifetimes,
            leeway_secs: leeway / 1000,
            throttle: Policy::default(),
            signing_alg,
            password_cost: Cost {
                memory_kib: args
                    .password_memory_kib
                    .or(file.password_memory_kib)
                    .unwrap_or(default_cost.memory_kib),
                iterations: args
                    .password_iterations
                    .or(file.password_iterations)
                    .unwrap_or(default_cost.iterations),
                parallelism: default_cost.parallelism,
            },
            hash_concurrency: args
                .hash_concurrency
                .or(file.hash_concurrency)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
        };
        Ok(Self {
            grpc_addr: address(
                "grpc_addr",
                args.grpc_addr.or(file.grpc_addr),
                "127.0.0.1:50051",
            )?,
            http_addr: address(
                "http_addr",
                args.http_addr.or(file.http_addr),
                "127.0.0.1:8080",
            )?,
            data_dir,
            database_url,
            master_key,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::resolve(ConfigArgs::default()).unwrap();
        assert_eq!(c.database_url, "sqlite://./latchkey-data/latchkey.db");
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.settings.lifetimes.access_ttl, 15 * 60_000);
        assert_eq!(c.settings.lifetimes.refresh_ttl, 14 * 86_400_000);
        assert_eq!(c.settings.lifetimes.session_max_age, 30 * 86_400_000);
        assert_eq!(c.settings.lifetimes.reuse_grace, 10_000);
        assert_eq!(c.settings.leeway_secs, 5);
        assert_eq!(c.settings.signing_alg, SigningAlg::EdDsa);
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latchkey.toml");
        std::fs::write(
            &path,
            "access_ttl = \"5m\"\nissuer = \"from-file\"\ndata_dir = \"/srv/lk\"\n",
        )
        .unwrap();
        let args = ConfigArgs {
            config: Some(path),
            issuer: Some("from-flag".into()),
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.settings.issuer, "from-flag");
        assert_eq!(c.settings.lifetimes.access_ttl, 5 * 60_000);
        assert_eq!(c.database_url, "sqlite:///srv/lk/latchkey.db");
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "acces_ttl = \"5m\"\n").unwrap();
        assert!(
            Config::resolve(ConfigArgs {
                config: Some(path),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            Config::resolve(ConfigArgs {
                access_ttl: Some("soon".into()),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            Config::resolve(ConfigArgs {
                signing_alg: Some("HS256".into()),
                ..Default::default()
            })
            .is_err()
        );
        let sub_second = ConfigArgs {
            clock_leeway: Some("500ms".into()),
            ..Default::default()
        };
        assert!(Config::resolve(sub_second).is_err());
    }

    #[test]
    fn secrets_are_redacted_from_debug() {
        let args = ConfigArgs {
            database_url: Some("sqlite://u:hunter2@host/db".into()),
            master_key: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
            ..Default::default()
        };
        let shown = format!("{:?}", Config::resolve(args.clone()).unwrap());
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("AAAAAAAA"));
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("AAAAAAAA"),
            "{shown}"
        );
        assert_eq!(
            redact_url("postgres://db/lk?sslmode=require&password=hunter2"),
            "postgres://db/lk?sslmode=require&password=<redacted>"
        );
    }
}
