//! [`VerifierBuilder`]: the settings of a verifier, and `connect`, which starts its tasks.

use std::{sync::Arc, time::Duration};

use tonic::transport::{ClientTlsConfig, Endpoint};

use crate::{
    Tasks, Verifier,
    clock::SystemClock,
    feed,
    jwks::Expectations,
    keys,
    pb::auth_service_client::AuthServiceClient,
    verifier::{Inner, Settings},
};

const DEFAULT_CACHE_CAPACITY: usize = 32_768;

/// Made by [`Verifier::builder`].
#[derive(Debug, Clone)]
pub struct VerifierBuilder {
    endpoint: String,
    audience: String,
    issuer: String,
    leeway: Duration,
    max_staleness: Option<Duration>,
    tls: Option<ClientTlsConfig>,
    cache_capacity: usize,
}

/// The endpoint or the TLS settings cannot be used. Being unable to reach latchkey is no error:
/// the verifier keeps trying, and refuses every token until it has loaded ([`Verifier::ready`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("cannot use this endpoint or TLS configuration for latchkey")]
    Endpoint(#[from] tonic::transport::Error),
    #[error("an https:// endpoint needs .tls(..) naming the CA that signed latchkey's certificate")]
    TlsMissing,
}

impl VerifierBuilder {
    pub(crate) fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            audience: "latchkey".into(),
            issuer: "latchkey".into(),
            leeway: Duration::from_secs(5),
            max_staleness: Some(Duration::from_secs(10)),
            tls: None,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// The `aud` tokens must carry (default `latchkey`, latchkey's default audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The `iss` tokens must carry (default `latchkey`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Tolerated clock skew on `exp`, `nbf` and `iat`, in whole seconds (default 5 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How long the revocation feed may be silent before every token is refused with
    /// `REVOCATIONS_STALE` (default 10 s). `None` fails open: once loaded, tokens keep being
    /// accepted however long latchkey is out of reach, so a token revoked meanwhile (a stolen
    /// one, a fired employee's) stays usable until its `exp` (15 minutes by default). Keep a
    /// bound well above latchkey's heartbeat period (1 s), or a healthy feed will flap.
    pub fn max_staleness(mut self, max_staleness: Option<Duration>) -> Self {
        self.max_staleness = max_staleness;
        self
    }

    /// TLS to latchkey (needed for an `https://` endpoint): trust anchors, server name, and a
    /// client identity where latchkey asks for one (mTLS).
    pub fn tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How many verified tokens to remember (default 32,768; 0 turns the cache off). A cached
    /// token skips the signature check; expiry, staleness and revocation are checked each time.
    pub fn cache_capacity(mut self, tokens: usize) -> Self {
        self.cache_capacity = tokens;
        self
    }

    /// Starts the verifier: its key and feed tasks run on the current tokio runtime from now on.
    /// Returns at once; [`Verifier::ready`] says when tokens can be verified.
    pub async fn connect(self) -> Result<Verifier, ConnectError> {
        let mut endpoint = Endpoint::from_shared(self.endpoint)?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        match self.tls {
            Some(tls) => endpoint = endpoint.tls_config(tls)?,
            None if endpoint.uri().scheme_str() == Some("https") => {
                return Err(ConnectError::TlsMissing);
            }
            None => {}
        }
        let channel = endpoint.connect_lazy();
        let settings = Settings {
            expect: Expectations {
                issuer: self.issuer,
                audience: self.audience,
            },
            leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
            max_staleness_ms: self
                .max_staleness
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            cache_capacity: self.cache_capacity,
        };
        let inner = Arc::new(Inner::new(settings, Arc::new(SystemClock::new())));
        let client = AuthServiceClient::new(channel);
        let tasks = [
            tokio::spawn(keys::follow(Arc::clone(&inner), client.clone())).abort_handle(),
            tokio::spawn(feed::follow(Arc::clone(&inner), client)).abort_handle(),
        ];
        Ok(Verifier {
            inner,
            _tasks: Arc::new(Tasks(tasks.into())),
        })
    }
}
