//! The `latchkey` binary as a child process (built by `cargo test` itself), on SQLite: signals,
//! the CLI on a fresh machine, the data directory's permissions, a crash, metrics of a server of
//! its own, the Dockerfile's build, TLS (the healthcheck over HTTPS, TLS settings refused), and the
//! `notifier` example following a server across its restart.

mod crash;
mod data_dir;
mod dockerfile;
mod notifier;
mod serve;
mod tls;
