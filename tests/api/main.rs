//! Integration tests: the real server on real sockets, driven as clients drive it. One test binary
//! (one link step); each test starts its own server with its own database.

mod envoy;
mod flows;
mod helpers;
mod ops;
mod peers;
mod sessions;
