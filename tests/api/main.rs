//! Integration tests: the real server on real sockets, driven as clients drive it. One test binary
//! (one link step); each test starts its own server with its own database.

mod conformance;
mod crash;
mod deploy;
mod envoy;
mod fleet;
mod flows;
mod helpers;
mod ops;
mod outage;
mod peers;
mod sessions;
