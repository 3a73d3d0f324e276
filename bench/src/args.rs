//! The command line. Passwords never go on it: they come from standard input or a variable.

use std::{io::Read as _, path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "latchkey-bench",
    version,
    about = "Drive a running latchkey over gRPC and report ops/s, latency and errors",
    after_help = "Exit status: 0 when the run made calls and none failed, 1 when any call failed \
                  or none was made (the report is printed all the same), 2 when it could not \
                  start (no connection, no password, the first login refused)."
)]
pub struct Args {
    /// The server: http://HOST:PORT, or https://HOST:PORT with --ca (the host is the name its
    /// certificate must carry).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub target: String,

    /// What each call does. `argon2`, `argon2-plain` and `eddsa` run locally (no server), one
    /// thread per CPU: the raw rates of an argon2id hash at the server's default (OWASP) cost (in
    /// memory laid out as the server's hashing workers lay theirs out, or in a plain allocation),
    /// and of an EdDSA access-token verification, as baselines.
    #[arg(long, value_enum)]
    pub op: Op,

    /// Calls in flight at once (one task each).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub conc: u32,

    /// HTTP/2 connections; the in-flight calls are spread over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub conns: u32,

    /// How long to measure, after the warm-up (e.g. `10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub duration: Duration,

    /// How long to run before measuring.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// The user that logs in (introspect, check, refresh, login).
    #[arg(long, default_value = "bench")]
    pub user: String,

    /// Read the user's password from standard input (one line).
    #[arg(long, conflicts_with = "password_env")]
    pub password_stdin: bool,

    /// Read the user's password from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,

    /// PEM bundle of the CA that signed the server's certificate (https targets).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// PEM client certificate, for a server that asks for one (mTLS).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Linux: the server's process id, to report its CPU time (all threads, user and system) over
    /// the measured window, per call; the same by thread name, with how often those threads were
    /// switched out; and this generator's own CPU time.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// One JSON object instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Op {
    /// `grpc.health.v1.Health/Check`: the cheapest call, the no-op baseline.
    Health,
    /// `AuthService/Introspect` of one access token (logged in once).
    Introspect,
    /// `envoy.service.auth.v3.Authorization/Check` with one bearer token (logged in once).
    Check,
    /// `AuthService/Refresh`: each task logs in once, then rotates its own chain.
    Refresh,
    /// `AuthService/Login`: an argon2id check and a new session per call.
    Login,
    /// Local: argon2id hashes at the server's default cost, in memory laid out as the server's
    /// hashing workers lay theirs out (on 2 MiB pages where the kernel grants them).
    Argon2,
    /// Local: the same hashes in a plain allocation, as a caller of the argon2 crate gets them by
    /// default (4 KiB pages, unless the kernel's transparent huge pages are `always`).
    Argon2Plain,
    /// Local: EdDSA access-token verifications.
    Eddsa,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Health => "health",
            Op::Introspect => "introspect",
            Op::Check => "check",
            Op::Refresh => "refresh",
            Op::Login => "login",
            Op::Argon2 => "argon2",
            Op::Argon2Plain => "argon2-plain",
            Op::Eddsa => "eddsa",
        }
    }

    /// Whether the op logs in, and so needs a password.
    pub fn logs_in(self) -> bool {
        matches!(self, Op::Introspect | Op::Check | Op::Refresh | Op::Login)
    }
}

impl Args {
    /// The password, from standard input or the named variable.
    pub fn password(&self) -> anyhow::Result<String> {
        if let Some(var) = &self.password_env {
            let password = std::env::var(var).with_context(|| format!("reading ${var}"))?;
            if password.is_empty() {
                bail!("${var} is empty");
            }
            return Ok(password);
        }
        if !self.password_stdin {
            bail!(
                "--op {} logs in: give the password with --password-stdin or --password-env VAR",
                self.op.name()
            );
        }
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .context("reading the password from standard input")?;
        // A trailing newline from `echo` or a terminal is not part of the password.
        let password = input.strip_suffix('\n').unwrap_or(&input);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            bail!("no password on standard input");
        }
        Ok(password.to_owned())
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}
