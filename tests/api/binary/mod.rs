//! The `latchkey` binary as a child process (built by `cargo test` itself), on SQLite: signals,
//! the CLI on a fresh machine, the data directory's permissions, a crash, metrics of a server of
//! its own, the Dockerfile's build, and TLS (the healthcheck over HTTPS, TLS settings refused).

mod crash;
mod data_dir;
mod dockerfile;
mod serve;
mod tls;
