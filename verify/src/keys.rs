//! The key task: fetches the JWK Set with `GetJwks` at start, every 5 minutes, and when a token
//! names an unknown `kid` (one fetch at a time, at most one a second). A failed fetch keeps the
//! keys already held; until some are held, it retries with backoff.

use std::{sync::Arc, time::Duration};

use tokio::time::{Instant, sleep, sleep_until, timeout};
use tonic::transport::Channel;
use tracing::warn;

use crate::{
    backoff::Backoff,
    jwks::KeySet,
    pb::{GetJwksRequest, auth_service_client::AuthServiceClient},
    verifier::Inner,
};

const REFRESH: Duration = Duration::from_secs(5 * 60);
const MIN_SPACING: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn follow(inner: Arc<Inner>, mut client: AuthServiceClient<Channel>) {
    let mut backoff = Backoff::new();
    loop {
        let started = Instant::now();
        match fetch(&inner, &mut client).await {
            Ok(keys) => {
                inner.install_keys(keys);
                backoff.reset();
            }
            Err(cause) => warn!(%cause, "fetching latchkey's keys failed; keeping the keys held"),
        }
        let wait = if inner.has_keys() {
            REFRESH
        } else {
            backoff.next_delay()
        };
        tokio::select! {
            () = sleep(wait) => {}
            () = inner.refetch.notified() => sleep_until(started + MIN_SPACING).await,
        }
    }
}

async fn fetch(inner: &Inner, client: &mut AuthServiceClient<Channel>) -> Result<KeySet, String> {
    let call = client.get_jwks(GetJwksRequest {});
    let response = timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| "GetJwks timed out".to_owned())?
        .map_err(|status| format!("GetJwks: {status}"))?;
    KeySet::parse(&response.into_inner().jwks_json, &inner.settings.expect)
        .map_err(|e| format!("GetJwks answered a malformed JWK Set: {e}"))
}
