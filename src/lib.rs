//! latchkey: an authentication service for service-to-service calls over gRPC.
//!
//! Data flows one way, from the edges inwards:
//!
//! - [`grpc`], [`http`] and [`cli`] are the edges: they parse requests into validated domain types
//!   and service commands, call [`service::Service`]'s own methods, and turn
//!   [`service::ServiceError`] into statuses, HTTP codes or exit codes. They import neither
//!   [`store`] nor [`crypto`].
//! - [`service`] holds the use cases (login, refresh, revoke, introspect, logout-all, sessions,
//!   keys) and owns the clock, the signing keys in memory and the revocation cache.
//! - [`domain`] is the rules: token families, lifetimes, throttling, scopes, and the validated
//!   types (names, passwords, the refresh-token format). Pure, time passed in.
//! - [`crypto`] is argon2id, JWTs, signing keys, the master key, and making and hashing refresh
//!   tokens.
//! - [`store`] is persistence behind one trait, one module per database.
//! - [`app`] wires them into a running server (and fills the edges' [`service::ServiceCell`] once
//!   the store is reached); [`config`] reads the settings; [`data_dir`] sets up or opens the data
//!   directory and the master key; [`listen`] accepts the connections of both ports, within their
//!   caps and handshake deadlines.
// One `unsafe` block is allowed where it stands: the huge-page advice under the argon2 workers'
// memory (`crypto::password::memory`), a system call that changes no byte of it.
#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod domain;
pub mod grpc;
pub mod http;
pub mod listen;
pub mod service;
pub mod store;
pub mod telemetry;
