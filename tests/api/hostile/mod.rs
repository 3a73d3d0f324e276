//! Random and hostile input: what an attacker can send, checked against the contract. Needs
//! nothing: the parsers alone, and the server in the test process (on SQLite, or PostgreSQL with
//! `LATCHKEY_TEST_BACKEND=postgres`). Run with `cargo test --test api -- hostile::`.
//!
//! - [`parsers`]: names, passwords, scopes, tokens and keys from arbitrary text (proptest).
//! - [`config`]: every setting from arbitrary text, through `Config::resolve` (proptest).
//! - [`decode`]: every request message from random bytes (proptest).
//! - [`flood`]: 10,000 random well-framed gRPC messages to a running server; [`found`]: what it
//!   found, as plain tests.

mod config;
mod decode;
mod flood;
mod found;
mod parsers;
