//! The crash scenario, run by two tests of different needs (a restarted process on SQLite, another
//! replica on PostgreSQL): 16 sessions refresh through a server that is killed (`kill -9`) mid-
//! stream; each client retries its last refresh token on the survivor inside the grace window,
//! and no session is lost or left with two live tokens.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use latchkey::grpc::pb::{self, auth_service_client::AuthServiceClient};
use tokio::sync::Notify;
use tonic::{Status, transport::Channel};

use super::{
    client::{introspect_with, reason, refresh_with},
    process::Server,
};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";
const CLIENTS: usize = 16;
/// Refreshes acknowledged overall before the server is killed.
const KILL_AFTER: usize = 100;

/// Refreshes until the server goes away; every refresh token held, and how the last call ended.
async fn churn(
    client: AuthServiceClient<Channel>,
    mut held: Vec<String>,
    refreshed: Arc<AtomicUsize>,
    enough: Arc<Notify>,
) -> (Vec<String>, Status) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match refresh_with(&client, held.last().unwrap()).await {
            Ok(pair) => held.push(pair.refresh_token),
            Err(status) => return (held, status),
        }
        if refreshed.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
            enough.notify_one();
        }
        assert!(Instant::now() < deadline, "the server was never killed");
    }
}

/// Logs [`USER`] in [`CLIENTS`] times.
async fn logins(client: &AuthServiceClient<Channel>) -> Vec<pb::TokenResponse> {
    let mut logins = Vec::new();
    for _ in 0..CLIENTS {
        let request = pb::LoginRequest {
            username: USER.into(),
            password: PASSWORD.into(),
            ..Default::default()
        };
        logins.push(client.clone().login(request).await.unwrap().into_inner());
    }
    logins
}

/// The scenario: 16 sessions of [`USER`] refreshing through `victim`, which is killed mid-stream;
/// then each client retries its last token on `survivor()` and refreshes once more.
pub async fn kill_mid_stream_then_retry(
    mut victim: Server,
    survivor: impl AsyncFnOnce() -> Server,
) {
    let client = victim.client();
    let logins = logins(&client).await;
    let (refreshed, enough) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
    let churns = logins.iter().map(|login| {
        let held = vec![login.refresh_token.clone()];
        churn(client.clone(), held, refreshed.clone(), enough.clone())
    });
    let kill = async {
        let waited = tokio::time::timeout(Duration::from_secs(20), enough.notified()).await;
        waited.expect("100 refreshes within 20 s");
        victim.kill();
        Instant::now()
    };
    let (ended, killed_at) = tokio::join!(join_all(churns), kill);
    let count = refreshed.load(Ordering::SeqCst);
    eprintln!("killed after {count} acknowledged refreshes");
    for (_, status) in &ended {
        // The server died: a transport failure, never an answer such as REFRESH_TOKEN_REUSED.
        assert!(reason(status).starts_with("<no ErrorInfo"), "{status:?}");
    }

    let survivor = survivor().await;
    survivor.ready().await;
    let b = survivor.client();
    let mut lost = 0; // rotations the victim committed but never answered (introspecting is harmless)
    for (held, _) in &ended {
        lost += usize::from(!introspect_with(&b, held.last().unwrap()).await.active);
    }
    eprintln!("{lost} of {CLIENTS} answers were lost with the victim");
    let retried = retry_each(&b, ended, killed_at).await;
    eprintln!(
        "retried on the survivor {:?} after the kill",
        killed_at.elapsed()
    );
    for (held, login) in retried.iter().zip(&logins) {
        let (last, earlier) = held.split_last().unwrap();
        let info = introspect_with(&b, last).await;
        assert!(info.active, "the last token of {}", login.session_id);
        assert_eq!(info.session_id, login.session_id);
        for token in earlier {
            let info = introspect_with(&b, token).await;
            assert!(!info.active, "two live tokens in {}", login.session_id);
        }
    }
    drop(survivor);
}

/// Each client retries its last token on the survivor `b`, then refreshes once more; every token
/// each one held.
async fn retry_each(
    b: &AuthServiceClient<Channel>,
    ended: Vec<(Vec<String>, Status)>,
    killed_at: Instant,
) -> Vec<Vec<String>> {
    join_all(ended.into_iter().map(|(mut held, _)| async move {
        let last = held.last().unwrap().clone();
        let since = killed_at.elapsed();
        let retry = refresh_with(b, &last)
            .await
            .unwrap_or_else(|s| panic!("retry {since:?} after the kill: {} {s:?}", reason(&s)));
        held.push(retry.refresh_token);
        let again = refresh_with(b, held.last().unwrap()).await;
        held.push(again.expect("a further refresh").refresh_token);
        held
    }))
    .await
}
