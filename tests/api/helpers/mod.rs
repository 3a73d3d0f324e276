//! What the tests share, one module per need. No test file serves another: whatever two test
//! files use lives here.
//!
//! - [`app`]: the server in the test process (`spawn_app`, `TestApp`), the settings every test
//!   server runs with, and the one place tests create users through the service;
//!   [`client`]: calls as clients make them (RPCs, bearer tokens, health, plain HTTP).
//! - [`process`]: the `latchkey` binary (or any program) as a child process (one command builder, one reaper,
//!   `Server` for `latchkey serve`); [`crash`]: the kill-mid-refresh scenario two tests run.
//! - [`postgres`]: fresh databases and throwaway clusters; [`certs`]: CAs and certificates for
//!   the TLS tests.
//! - [`peers`]: the Python peers and grpcurl, and how to install them; [`envoy`]: Envoy in front
//!   of a server; [`compose`]: the Compose and Envoy files as PyYAML reads them.
//! - [`dockerfile`]: the Dockerfile and its copy set.
//! - [`greeter`]: the verifier library's `greeter` example as a child process, and the trials of
//!   its 1 s promise.
//! - [`log`]: the `TEST_LOG` switch.

pub mod app;
pub mod certs;
pub mod client;
pub mod compose;
pub mod crash;
pub mod dockerfile;
pub mod envoy;
pub mod greeter;
pub mod log;
pub mod peers;
pub mod postgres;
pub mod process;

/// Where the store conformance suite finds it.
pub use postgres::fresh_postgres_database;
