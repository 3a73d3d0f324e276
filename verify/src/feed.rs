//! The feed task: follows `WatchRevocations` from 0, resuming after the last `seq` seen when the
//! stream breaks, with capped exponential backoff and jitter. Every message, event or heartbeat,
//! counts as heard. A stream silent for longer than the heartbeat promise allows is dropped and
//! resumed: a peer that vanished without closing the connection would otherwise hold it forever.

use std::{sync::Arc, time::Duration};

use tokio::time::{sleep, timeout};
use tonic::{Status, transport::Channel};
use tracing::{debug, warn};

use crate::{
    backoff::Backoff,
    pb::{
        RevocationEvent, WatchRevocationsRequest, auth_service_client::AuthServiceClient,
        revocation_event,
    },
    revocations::Target,
    verifier::Inner,
};

/// Heartbeats come at least once a second; this much silence means the stream is dead.
const SILENCE: Duration = Duration::from_secs(3);
/// How often expired events are forgotten.
const FORGET_EVERY_SECS: i64 = 1;

pub(crate) async fn follow(inner: Arc<Inner>, mut client: AuthServiceClient<Channel>) {
    let mut backoff = Backoff::new();
    loop {
        match watch(&inner, &mut client, &mut backoff).await {
            Ok(()) => debug!("the revocation feed ended; resuming"),
            Err(status) => warn!(%status, "the revocation feed broke; resuming"),
        }
        sleep(backoff.next_delay()).await;
    }
}

/// One stream, until it ends or breaks.
async fn watch(
    inner: &Inner,
    client: &mut AuthServiceClient<Channel>,
    backoff: &mut Backoff,
) -> Result<(), Status> {
    let after_seq = inner.revocations.last_seq();
    let request = WatchRevocationsRequest { after_seq };
    let opened = timeout(SILENCE, client.watch_revocations(request)).await;
    let mut stream = opened
        .map_err(|_| Status::deadline_exceeded("no answer"))??
        .into_inner();
    let mut forgotten_at = i64::MIN;
    loop {
        let message = timeout(SILENCE, stream.message()).await;
        let Some(event) = message.map_err(|_| Status::deadline_exceeded("silent feed"))?? else {
            return Ok(());
        };
        backoff.reset();
        hear(inner, event);
        let now = inner.clock.now().unix;
        if now >= forgotten_at.saturating_add(FORGET_EVERY_SECS) {
            inner.revocations.forget_expired(now, inner.settings.leeway);
            forgotten_at = now;
        }
    }
}

/// Applies one message of the feed.
pub(crate) fn hear(inner: &Inner, event: RevocationEvent) {
    let target = event.target.map(|target| match target {
        revocation_event::Target::SessionId(id) => Target::Session(id),
        revocation_event::Target::Jti(jti) => Target::Jti(jti),
        revocation_event::Target::User(user) => Target::User {
            user_id: user.user_id,
            not_before: user.not_before,
        },
    });
    let heartbeat = target.is_none();
    if let Some(target) = target {
        inner.revocations.apply(target, event.expires_at);
    }
    inner
        .revocations
        .heard(event.seq, inner.clock.now(), heartbeat);
    if heartbeat {
        inner.feed_loaded();
    }
}
