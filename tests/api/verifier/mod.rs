//! The verifier library (`latchkey-verify`) against the real server, on real sockets: its
//! `greeter` example as a child process, as users run it, and in-process verifiers where the
//! test needs `verify`'s own answer. On SQLite (`LATCHKEY_TEST_BACKEND=postgres`: PostgreSQL), one
//! server; the fleet half is `postgres::verifier::` (the filter `verifier::` picks both).
//!
//! Needs the example built: `cargo test --workspace` builds it; alone,
//! `cargo build -p latchkey-verify --example greeter`.

mod forged;
mod greeter;
mod keys;
mod outage;
mod promise;
mod tls;
