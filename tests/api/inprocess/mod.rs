//! The server in the test process (`spawn_app`), on SQLite in a temporary directory: nothing to
//! install, nothing to start. The fast subset: `cargo test --test api -- inprocess::`. With
//! `LATCHKEY_TEST_BACKEND=postgres` the same tests run on PostgreSQL (as `.ci/run` does).

mod abuse;
mod activity;
mod admin;
mod connections;
mod ext_authz;
mod feed;
mod introspect;
mod login;
mod ops;
mod refresh;
mod secrets;
mod sessions;
mod tls;

/// For the fleet's tests of account events.
pub use admin::admin_token;
