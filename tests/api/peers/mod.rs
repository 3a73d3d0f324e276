//! Real third-party software against the real server: grpcurl, PyJWT and grpcio as clients, Envoy
//! as the gateway, PyYAML and Envoy reading the deployment files; the same peers over TLS and mTLS
//! (`tls`). Installed by `bash .ci/run`; see [`crate::helpers::peers`].

mod clients;
mod compose;
mod envoy;
mod envoy_config;
mod tls;
