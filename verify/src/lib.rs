//! Verify latchkey access tokens inside your own service: locally, against the keys latchkey
//! publishes, and honouring every revocation within a second, without a call per request.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_verify::Verifier;
//!
//! let verifier = Verifier::builder("http://127.0.0.1:50051").audience("latchkey").connect().await?;
//! verifier.ready().await;
//! let claims = verifier.verify("eyJ...")?;
//! println!("{} may read: {}", claims.sub, claims.has_scope("read"));
//! # Ok(())
//! # }
//! ```
//!
//! [`Verifier::verify`] applies exactly the rules of latchkey's Introspect, in memory. Two
//! background tasks keep that memory current: one fetches the keys (`GetJwks`), one follows the
//! revocation feed (`WatchRevocations`). **Fail closed**: when the feed has been silent for longer
//! than [`VerifierBuilder::max_staleness`] (10 s by default), every token is refused with
//! [`VerifyError::Stale`] (`REVOCATIONS_STALE`), because a token revoked meanwhile cannot be told
//! from a good one. See the README for the trade-off and for TLS.

mod backoff;
mod builder;
mod cache;
mod claims;
mod clock;
mod feed;
mod jwks;
mod keys;
mod layer;
mod revocations;
mod token;
mod verifier;

#[cfg(test)]
mod testkeys;
#[cfg(test)]
mod tests;

/// latchkey's messages and AuthService client, generated from `proto/latchkey/v1/auth.proto`.
mod pb {
    include!(concat!(env!("OUT_DIR"), "/client/latchkey.v1.rs"));
}

use std::{fmt, sync::Arc};

use tokio::task::AbortHandle;

pub use builder::{ConnectError, VerifierBuilder};
pub use claims::{Claims, ERROR_DOMAIN, VerifyError};
pub use layer::{ResponseFuture, VerifyLayer, VerifyService};
/// TLS settings for the connection to latchkey (tonic's, with rustls and aws-lc-rs).
pub use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use verifier::Inner;

/// Checks access tokens. Cheap to clone (all clones share one state and one pair of background
/// tasks, which stop when the last clone is dropped).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
    _tasks: Arc<Tasks>,
}

/// The background tasks, aborted with the last clone of their verifier.
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.iter().for_each(AbortHandle::abort);
    }
}

impl Verifier {
    /// Starts building a verifier of the latchkey at `endpoint` (`http://host:port`, or
    /// `https://…` with [`VerifierBuilder::tls`]).
    pub fn builder(endpoint: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder::new(endpoint.into())
    }

    /// Resolves once the keys and the revocation feed have both been loaded. Before that, every
    /// token is refused. It waits as long as latchkey is out of reach: bound it with a timeout.
    pub async fn ready(&self) {
        let mut loaded = self.inner.loaded.subscribe();
        // The sender lives in `inner`, which `self` holds: waiting cannot fail.
        let _ = loaded.wait_for(|l| l.keys && l.feed).await;
    }

    /// The claims of `token` if latchkey's Introspect would call it active now: genuine, of the
    /// right type, issuer and audience, in time, and not revoked. Synchronous and memory only.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.inner.verify(token)
    }

    /// A tower layer for tonic servers that verifies each request's bearer token; see
    /// [`VerifyLayer`].
    pub fn layer(&self) -> VerifyLayer {
        VerifyLayer::new(self.clone())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}
