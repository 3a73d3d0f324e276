//! The settings' unit tests: one per refusal, each asserting the message names the setting (a
//! table of cases, so the file runs past 300 lines).

use clap::{Args, Command};

use super::*;

#[test]
fn defaults_follow_the_contract() {
    let c = Config::resolve(ConfigArgs::default()).unwrap();
    assert_eq!(
        c.database_url.expose(),
        "sqlite://./latchkey-data/latchkey.db"
    );
    assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.settings.lifetimes.access_ttl, 15 * 60_000);
    assert_eq!(c.settings.lifetimes.refresh_ttl, 14 * 86_400_000);
    assert_eq!(c.settings.lifetimes.session_max_age, 30 * 86_400_000);
    assert_eq!(c.settings.lifetimes.reuse_grace, 10_000);
    assert_eq!(c.settings.leeway_secs, 5);
    assert_eq!(c.settings.signing_alg, SigningAlg::EdDsa);
    assert_eq!(c.settings.password_cost, Cost::default());
    assert_eq!(c.settings.login_failures_per_address, 100);
    assert_eq!(c.settings.max_sessions_per_user, 100);
    assert_eq!(c.settings.event_retention, 90 * 86_400_000);
    let periods = Periods {
        revocation_sync: Duration::from_millis(50),
        key_sync: Duration::from_secs(1),
        housekeeping: Duration::from_secs(60),
        health_check: Duration::from_secs(1),
        gauge_refresh: Duration::from_secs(15),
    };
    assert_eq!(c.periods, periods);
    assert_eq!(c.shutdown_grace, Duration::from_secs(10));
    assert_eq!(c.log.filter, "info");
    assert_eq!(c.log.format, LogFormat::Text);
}

#[test]
fn flags_beat_the_file_which_beats_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latchkey.toml");
    std::fs::write(
        &path,
        "access_ttl = \"5m\"\nissuer = \"from-file\"\ndata_dir = \"/srv/lk\"\n\
         password_iterations = 3\nmaster_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n",
    )
    .unwrap();
    let args = ConfigArgs {
        config: Some(path),
        issuer: Some("from-flag".into()),
        key_sync_interval: Some("10ms".into()),
        ..Default::default()
    };
    let c = Config::resolve(args).unwrap();
    assert_eq!(c.settings.issuer, "from-flag");
    assert_eq!(c.settings.lifetimes.access_ttl, 5 * 60_000);
    assert_eq!(c.settings.password_cost.iterations, 3);
    assert_eq!(c.database_url.expose(), "sqlite:///srv/lk/latchkey.db");
    assert_eq!(c.data_dir.path(), Path::new("/srv/lk"));
    assert_eq!(c.periods.key_sync, Duration::from_millis(10));
}

#[test]
fn unknown_file_keys_and_bad_values_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "acces_ttl = \"5m\"\n").unwrap();
    let error = refusal(ConfigArgs {
        config: Some(path),
        ..Default::default()
    });
    assert!(error.contains("acces_ttl"), "{error}");
    let bad_type = dir.path().join("type.toml");
    std::fs::write(&bad_type, "hash_concurrency = \"many\"\n").unwrap();
    let error = refusal(ConfigArgs {
        config: Some(bad_type),
        ..Default::default()
    });
    assert!(error.contains("hash_concurrency"), "{error}");
    assert!(
        refusal(ConfigArgs {
            config: Some(dir.path().join("absent.toml")),
            ..Default::default()
        })
        .contains("LATCHKEY_CONFIG")
    );
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

/// The error `args` are refused with, as the operator reads it.
fn refusal(args: ConfigArgs) -> String {
    match Config::resolve(args) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(e) => format!("{e:#}"),
    }
}

/// Asserts that `args` are refused with a message naming `var` and containing `allowed`.
pub(super) fn refused(args: ConfigArgs, var: &str, allowed: &str) {
    let error = refusal(args);
    assert!(error.starts_with(var), "{var}: {error}");
    assert!(error.contains(allowed), "{var}: {error}");
}

macro_rules! args {
    ($($field:ident: $value:expr),* $(,)?) => {
        ConfigArgs { $($field: Some($value.into()),)* ..Default::default() }
    };
}

#[test]
fn password_costs_argon2_cannot_run_are_refused() {
    let var = "LATCHKEY_PASSWORD_MEMORY_KIB";
    refused(args!(password_memory_kib: 1u32), var, "between 8 and");
    refused(args!(password_memory_kib: 1u32 << 30), var, "between 8 and");
    let var = "LATCHKEY_PASSWORD_ITERATIONS";
    refused(args!(password_iterations: 0u32), var, "at least 1");
    let var = "LATCHKEY_HASH_CONCURRENCY";
    refused(args!(hash_concurrency: 0usize), var, "between 1 and 1024");
    refused(
        args!(hash_concurrency: usize::MAX),
        var,
        "between 1 and 1024",
    );
    Config::resolve(args!(password_memory_kib: 8u32, password_iterations: 1u32)).unwrap();
}

#[test]
fn abuse_limits_out_of_range_are_refused() {
    let var = "LATCHKEY_LOGIN_FAILURES_PER_ADDRESS";
    refused(
        args!(login_failures_per_address: 1_000_001u32),
        var,
        "between 0 and 1000000",
    );
    let var = "LATCHKEY_MAX_SESSIONS_PER_USER";
    refused(
        args!(max_sessions_per_user: 0u32),
        var,
        "between 1 and 100000",
    );
    refused(
        args!(event_retention: "10m"),
        "LATCHKEY_EVENT_RETENTION",
        "at least 1h",
    );
    let off = Config::resolve(args!(login_failures_per_address: 0u32)).unwrap();
    assert_eq!(off.settings.login_failures_per_address, 0);
}

#[test]
fn an_empty_issuer_audience_data_dir_or_log_filter_is_refused() {
    refused(args!(issuer: ""), "LATCHKEY_ISSUER", "non-empty");
    refused(args!(audience: " "), "LATCHKEY_AUDIENCE", "non-empty");
    refused(args!(data_dir: ""), "LATCHKEY_DATA_DIR", "non-empty");
    refused(args!(log: ""), "LATCHKEY_LOG", "non-empty");
}

#[test]
fn lifetimes_out_of_order_are_refused() {
    let refresh = "LATCHKEY_REFRESH_TTL";
    refused(
        args!(refresh_ttl: "1m"),
        refresh,
        "at least LATCHKEY_ACCESS_TTL=15m",
    );
    let session = "LATCHKEY_SESSION_MAX_AGE";
    refused(
        args!(session_max_age: "10m"),
        session,
        "at least LATCHKEY_ACCESS_TTL",
    );
    let grace = "LATCHKEY_REUSE_GRACE";
    refused(
        args!(reuse_grace: "14d"),
        grace,
        "shorter than LATCHKEY_REFRESH_TTL=14days",
    );
    refused(
        args!(access_ttl: "500ms"),
        "LATCHKEY_ACCESS_TTL",
        "at least 1s",
    );
    refused(
        args!(access_ttl: "soon"),
        "LATCHKEY_ACCESS_TTL",
        "not a duration",
    );
    // Equal lifetimes, and no grace at all, are fine.
    Config::resolve(args!(access_ttl: "1h", refresh_ttl: "1h", session_max_age: "1h")).unwrap();
    Config::resolve(args!(reuse_grace: "0s")).unwrap();
}

#[test]
fn bad_addresses_algorithms_leeway_and_urls_are_refused() {
    refused(
        args!(grpc_addr: "localhost"),
        "LATCHKEY_GRPC_ADDR",
        "such as",
    );
    refused(
        args!(http_addr: "1.2.3.4:99999"),
        "LATCHKEY_HTTP_ADDR",
        "such as",
    );
    refused(
        args!(signing_alg: "HS256"),
        "LATCHKEY_SIGNING_ALG",
        "shared secret",
    );
    refused(
        args!(signing_alg: "none"),
        "LATCHKEY_SIGNING_ALG",
        "EdDSA, ES256 or RS256",
    );
    refused(
        args!(clock_leeway: "500ms"),
        "LATCHKEY_CLOCK_LEEWAY",
        "whole seconds",
    );
    refused(args!(master_key: "short"), "LATCHKEY_MASTER_KEY", "base64");
    let error = refusal(args!(database_url: "mysql://u:hunter2@db/lk"));
    assert!(error.starts_with("LATCHKEY_DATABASE_URL"), "{error}");
    assert!(
        error.contains("postgres://") && !error.contains("hunter2"),
        "{error}"
    );
}

#[test]
fn background_periods_must_be_longer_than_zero() {
    for (args, var) in [
        (
            args!(revocation_sync_interval: "0s"),
            "LATCHKEY_REVOCATION_SYNC_INTERVAL",
        ),
        (
            args!(key_sync_interval: "0ms"),
            "LATCHKEY_KEY_SYNC_INTERVAL",
        ),
        (
            args!(housekeeping_interval: "0s"),
            "LATCHKEY_HOUSEKEEPING_INTERVAL",
        ),
        (
            args!(health_check_interval: "0s"),
            "LATCHKEY_HEALTH_CHECK_INTERVAL",
        ),
        (
            args!(gauge_refresh_interval: "0s"),
            "LATCHKEY_GAUGE_REFRESH_INTERVAL",
        ),
    ] {
        refused(args, var, "longer than zero");
    }
    refused(
        args!(shutdown_grace: "later"),
        "LATCHKEY_SHUTDOWN_GRACE",
        "not a duration",
    );
}

#[test]
fn revocation_streams_are_capped_and_slow_readers_cut_off_as_set() {
    let defaults = Config::resolve(ConfigArgs::default())
        .unwrap()
        .settings
        .feed;
    let feed = FeedLimits {
        max_watchers: 10_000,
        stall_timeout: Duration::from_secs(5),
    };
    assert_eq!(defaults, feed);
    let var = "LATCHKEY_MAX_WATCHERS";
    refused(args!(max_watchers: 0usize), var, "between 1 and 1000000");
    refused(args!(max_watchers: 2_000_000usize), var, "between 1 and");
    let var = "LATCHKEY_SLOW_WATCHER_TIMEOUT";
    refused(args!(slow_watcher_timeout: "0s"), var, "at least 10ms");
    refused(args!(slow_watcher_timeout: "soon"), var, "not a duration");
    let set = Config::resolve(args!(max_watchers: 2usize, slow_watcher_timeout: "300ms")).unwrap();
    assert_eq!(set.settings.feed.stall_timeout, Duration::from_millis(300));
}

#[test]
fn a_bad_log_filter_or_format_is_refused() {
    refused(
        args!(log: "latchkey=loud"),
        "LATCHKEY_LOG",
        "not a log filter",
    );
    refused(
        args!(log_format: "xml"),
        "LATCHKEY_LOG_FORMAT",
        "text or json",
    );
    let c = Config::resolve(args!(log: "warn,latchkey=debug", log_format: "json")).unwrap();
    assert_eq!(c.log.format, LogFormat::Json);
}

/// Every setting is a flag and a `LATCHKEY_*` variable of the same name, a key of the file, and a
/// row of the README's table.
#[test]
fn every_setting_has_one_name_and_is_documented() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let command = ConfigArgs::augment_args(Command::new("latchkey"));
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let var = arg.get_env().and_then(|v| v.to_str()).unwrap_or_default();
        assert_eq!(var, format!("LATCHKEY_{}", id.to_uppercase()), "{id}");
        let flag = format!("--{}", id.replace('_', "-"));
        assert_eq!(arg.get_long(), Some(&flag[2..]), "{id}");
        let row = format!("| `{flag}` | `{var}` |");
        assert!(readme.contains(&row), "the README has no row {row}");
    }
}
