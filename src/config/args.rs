//! The list of settings. Each field is declared once and is at the same time a flag (clap), a
//! `LATCHKEY_*` variable (clap's `env`, read when the command line is parsed) and a key of the
//! TOML file (serde, unknown keys refused). Every field is optional: an unset one falls back to the
//! file, then to the default that [`Config::resolve`](super::Config::resolve) gives it, where it is
//! also checked. Values stay text here so that errors can name the variable and say what is
//! allowed, instead of a parser's message about a flag.

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::domain::secret::Secret;

/// The settings as given; see the README's Configuration table.
#[derive(Debug, Args, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigArgs {
    /// TOML file with any of the settings below (keys in snake_case, e.g. `grpc_addr`).
    #[arg(long, env = "LATCHKEY_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where the SQLite file and the generated master key live [default: ./latchkey-data].
    #[arg(long, env = "LATCHKEY_DATA_DIR", global = true)]
    pub data_dir: Option<String>,
    /// sqlite:// or postgres:// URL [default: sqlite://<data dir>/latchkey.db].
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    #[serde(default, with = "secret_text")]
    pub database_url: Option<Secret<String>>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "LATCHKEY_GRPC_ADDR", global = true)]
    pub grpc_addr: Option<String>,
    /// HTTP listen address: JWKS, health, metrics [default: 127.0.0.1:8080].
    #[arg(long, env = "LATCHKEY_HTTP_ADDR", global = true)]
    pub http_addr: Option<String>,
    /// Most gRPC connections open at once; more are closed as soon as accepted [default: 10000].
    #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// How long a gRPC connection may take to send the HTTP/2 preface and settings [default: 10s].
    #[arg(long, env = "LATCHKEY_GRPC_HANDSHAKE_TIMEOUT", global = true)]
    pub grpc_handshake_timeout: Option<String>,
    /// Most HTTP connections open at once; more are closed as soon as accepted [default: 1024].
    #[arg(long, env = "LATCHKEY_HTTP_MAX_CONNECTIONS", global = true)]
    pub http_max_connections: Option<usize>,
    /// How long an HTTP connection may take to send a request's headers, from its opening or its
    /// previous response [default: 10s].
    #[arg(long, env = "LATCHKEY_HTTP_HEADER_TIMEOUT", global = true)]
    pub http_header_timeout: Option<String>,
    /// PEM certificate (then any intermediates): both ports serve only TLS; re-read when the file
    /// changes [default: none, plaintext].
    #[arg(long, env = "LATCHKEY_TLS_CERT", global = true)]
    pub tls_cert: Option<String>,
    /// PEM private key of LATCHKEY_TLS_CERT [default: none].
    #[arg(long, env = "LATCHKEY_TLS_KEY", global = true)]
    pub tls_key: Option<String>,
    /// PEM bundle of CAs: every gRPC connection must present a client certificate that chains to
    /// one (mTLS) [default: none].
    #[arg(long, env = "LATCHKEY_TLS_CLIENT_CA", global = true)]
    pub tls_client_ca: Option<String>,
    /// Client identities (comma-separated; `prefix/*` matches under a path) allowed to call
    /// Introspect, WatchRevocations and ext_authz Check [default: empty, anyone].
    #[arg(long, env = "LATCHKEY_SERVICE_CALLERS", global = true)]
    pub service_callers: Option<String>,
    /// Client identities allowed to call the AdminService [default: empty].
    #[arg(long, env = "LATCHKEY_ADMIN_CALLERS", global = true)]
    pub admin_callers: Option<String>,
    /// `iss` of issued tokens [default: latchkey].
    #[arg(long, env = "LATCHKEY_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// `aud` of issued tokens, required of presented ones [default: latchkey].
    #[arg(long, env = "LATCHKEY_AUDIENCE", global = true)]
    pub audience: Option<String>,
    /// Access token lifetime [default: 15m].
    #[arg(long, env = "LATCHKEY_ACCESS_TTL", global = true)]
    pub access_ttl: Option<String>,
    /// Refresh token idle lifetime, renewed by each refresh; at least the access TTL [default: 14d].
    #[arg(long, env = "LATCHKEY_REFRESH_TTL", global = true)]
    pub refresh_ttl: Option<String>,
    /// Absolute session lifetime from login; at least the access TTL [default: 30d].
    #[arg(long, env = "LATCHKEY_SESSION_MAX_AGE", global = true)]
    pub session_max_age: Option<String>,
    /// Window in which the just-spent refresh token is a retry, not reuse; 0s disables; shorter
    /// than the refresh TTL [default: 10s].
    #[arg(long, env = "LATCHKEY_REUSE_GRACE", global = true)]
    pub reuse_grace: Option<String>,
    /// EdDSA, ES256 or RS256 [default: EdDSA].
    #[arg(long, env = "LATCHKEY_SIGNING_ALG", global = true)]
    pub signing_alg: Option<String>,
    /// Tolerated clock skew on exp/nbf, whole seconds [default: 5s].
    #[arg(long, env = "LATCHKEY_CLOCK_LEEWAY", global = true)]
    pub clock_leeway: Option<String>,
    /// Base64 of 32 random bytes; every replica needs the same [default: generated into the data dir].
    #[arg(
        long,
        env = "LATCHKEY_MASTER_KEY",
        global = true,
        hide_env_values = true
    )]
    #[serde(default, with = "secret_text")]
    pub master_key: Option<Secret<String>>,
    /// argon2id memory cost in KiB, 8 to 4194304 [default: 19456].
    #[arg(long, env = "LATCHKEY_PASSWORD_MEMORY_KIB", global = true)]
    pub password_memory_kib: Option<u32>,
    /// argon2id iterations, at least 1 [default: 2].
    #[arg(long, env = "LATCHKEY_PASSWORD_ITERATIONS", global = true)]
    pub password_iterations: Option<u32>,
    /// Password hashes computed at once, 1 to 1024; more callers wait, beyond 8× this they get
    /// OVERLOADED [default: the number of CPUs].
    #[arg(long, env = "LATCHKEY_HASH_CONCURRENCY", global = true)]
    pub hash_concurrency: Option<usize>,
    /// WatchRevocations streams open at once, 1 to 1000000; beyond, OVERLOADED [default: 10000].
    #[arg(long, env = "LATCHKEY_MAX_WATCHERS", global = true)]
    pub max_watchers: Option<usize>,
    /// How long a WatchRevocations reader may leave its stream's buffer full before it is cut off
    /// with UNAVAILABLE [default: 5s].
    #[arg(long, env = "LATCHKEY_SLOW_WATCHER_TIMEOUT", global = true)]
    pub slow_watcher_timeout: Option<String>,
    /// Failed logins from one client address (an IPv6 /64) within a minute before its next
    /// attempts are refused; 0 turns the limit off [default: 100].
    #[arg(long, env = "LATCHKEY_LOGIN_FAILURES_PER_ADDRESS", global = true)]
    pub login_failures_per_address: Option<u32>,
    /// Live sessions a user may hold; a login beyond it revokes the least recently used one, 1 to
    /// 100000 [default: 100].
    #[arg(long, env = "LATCHKEY_MAX_SESSIONS_PER_USER", global = true)]
    pub max_sessions_per_user: Option<u32>,
    /// How long account events are kept (ListEvents, ListActivity, WatchEvents; a login's
    /// `new_device` looks back over the last 90 days of them), at least 1h [default: 90d].
    #[arg(long, env = "LATCHKEY_EVENT_RETENTION", global = true)]
    pub event_retention: Option<String>,
    /// How often revocations made by other processes are picked up (on PostgreSQL also at once,
    /// by NOTIFY) [default: 50ms].
    #[arg(long, env = "LATCHKEY_REVOCATION_SYNC_INTERVAL", global = true)]
    pub revocation_sync_interval: Option<String>,
    /// How often the signing keys are re-read, so `keys rotate` reaches servers [default: 1s].
    #[arg(long, env = "LATCHKEY_KEY_SYNC_INTERVAL", global = true)]
    pub key_sync_interval: Option<String>,
    /// How often expired sessions and old records are purged [default: 60s].
    #[arg(long, env = "LATCHKEY_HOUSEKEEPING_INTERVAL", global = true)]
    pub housekeeping_interval: Option<String>,
    /// How often the store is pinged for health, and opening it retried [default: 1s].
    #[arg(long, env = "LATCHKEY_HEALTH_CHECK_INTERVAL", global = true)]
    pub health_check_interval: Option<String>,
    /// How often the active-session gauge and the metrics histograms are refreshed [default: 15s].
    #[arg(long, env = "LATCHKEY_GAUGE_REFRESH_INTERVAL", global = true)]
    pub gauge_refresh_interval: Option<String>,
    /// How long in-flight calls may take to finish after SIGTERM [default: 10s].
    #[arg(long, env = "LATCHKEY_SHUTDOWN_GRACE", global = true)]
    pub shutdown_grace: Option<String>,
    /// Log filter, tracing syntax such as `info,latchkey=debug` [default: info].
    #[arg(long, env = "LATCHKEY_LOG", global = true)]
    pub log: Option<String>,
    /// `text` or `json` (one object per line, for log shippers) [default: text].
    #[arg(long, env = "LATCHKEY_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

impl ConfigArgs {
    /// These settings over `lower`: a setting given here wins, an unset one is taken from
    /// `lower`. Both go through serde, so no field is listed again.
    pub(super) fn over(self, lower: Self) -> anyhow::Result<Self> {
        let (serde_json::Value::Object(mut merged), serde_json::Value::Object(upper)) =
            (serde_json::to_value(lower)?, serde_json::to_value(&self)?)
        else {
            anyhow::bail!("settings are not a map");
        };
        merged.extend(upper.into_iter().filter(|(_, value)| !value.is_null()));
        let mut layered: Self = serde_json::from_value(merged.into())?;
        layered.config = self.config;
        Ok(layered)
    }
}

/// A secret setting is plain text in the file and in the merge, and [`Secret`] everywhere else.
mod secret_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::domain::secret::Secret;

    pub fn serialize<S: Serializer>(
        value: &Option<Secret<String>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_ref().map(Secret::expose).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Secret<String>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Secret::new))
    }
}
