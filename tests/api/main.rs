//! Integration tests: the real server on real sockets, driven as clients drive it. One test binary
//! (one link step); each test starts its own server with its own database.
//!
//! Grouped by what they need, so that a group runs by name (`cargo test --test api -- <group>::`):
//!
//! - `inprocess`: nothing. The server in the test process, on SQLite (on PostgreSQL with
//!   `LATCHKEY_TEST_BACKEND=postgres`). The fast subset.
//! - `binary`: nothing either. The `latchkey` binary as a child process, on SQLite.
//! - `postgres`: a PostgreSQL server (`LATCHKEY_TEST_POSTGRES_URL`), and its binaries for
//!   throwaway clusters (`LATCHKEY_PG_BIN`). The filter also picks `conformance::postgres::`.
//! - `peers`: the third-party peers: grpcurl, Envoy, and a Python with PyJWT, grpcio and PyYAML.
//! - `conformance`: the store alone, on SQLite (`conformance::sqlite::`) and PostgreSQL.
//! - `verifier`: the verifier library (`latchkey-verify`) and its `greeter` example, built
//!   beside the server by `cargo test --workspace`. The filter also picks `postgres::verifier::`.
//! - `hostile`: nothing. Random and hostile input: the parsers and settings under proptest, and a
//!   flood of random messages to the server in the test process.
//!
//! What they share is in [`helpers`], one module per need.

mod binary;
mod conformance;
mod helpers;
mod hostile;
mod inprocess;
mod peers;
mod postgres;
mod verifier;
