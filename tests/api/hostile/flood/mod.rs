//! 10,000 random well-framed gRPC messages to a real server in the test process, spread over every
//! AuthService RPC, gRPC health `Check` and ext_authz `Check`: half well-formed messages of random
//! field values (real tokens among them, damaged or not), half bytes that are not the message, with
//! random `authorization` metadata or none. Each answer must be one the contract allows (see
//! [`contract`]), within a deadline; no thread of the server may panic; and at the end the server
//! still logs a new user in and stops cleanly.
//!
//! The seed is printed; `HOSTILE_SEED=<seed>` replays the same messages (message `i` is drawn from
//! the seed and `i` alone, though which real tokens it reuses depends on what came back before).
//! A failure prints each offending message's bytes.

mod accounts;
mod contract;
mod messages;
mod random;
mod tally;
mod wire;

use std::{
    hash::{BuildHasher, Hasher},
    sync::{
        Arc, Mutex, Once,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use latchkey::{
    grpc::pb::{self, auth_service_client::AuthServiceClient},
    service::ManualClock,
};
use prost::Message;
use tonic::transport::Channel;

use self::{
    contract::{Method, Outcome},
    random::{Known, Rng},
    tally::{Shot, Tally},
};
use crate::helpers::{
    app::{TestApp, disable_user, spawn_app},
    client::{introspect_with, lazy_channel, refresh_with},
};

const MESSAGES: usize = 10_000;
/// Calls in flight at once, over a few connections.
const WORKERS: usize = 16;
const CONNECTIONS: usize = 4;
/// The name of every thread of the flood's runtime, the server's included: how a panic in any of
/// them is told from one in another test.
const THREAD: &str = "hostile-flood";

/// How many in a hundred messages go to each method. Login has fewer: each one may hash.
fn weight(method: Method) -> usize {
    match method {
        Method::Login => 7,
        Method::Refresh | Method::LogoutAll => 11,
        Method::Revoke | Method::ListSessions => 10,
        Method::Introspect => 13,
        Method::GetJwks => 6,
        Method::WatchRevocations => 9,
        Method::HealthCheck => 8,
        Method::ExtAuthzCheck => 15,
        // 13 calls: a fifth of the flood, about 4 % each.
        Method::Account(_) => 4,
    }
}

#[test]
fn ten_thousand_random_messages_get_only_answers_the_contract_allows() {
    let seed = std::env::var("HOSTILE_SEED").map_or_else(
        |_| {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        },
        |s| s.parse().expect("HOSTILE_SEED is a number"),
    );
    println!("hostile flood: seed {seed} (replay with HOSTILE_SEED={seed})");
    let panics = panics_in_flood_threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREAD)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(flood(seed));
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a thread panicked (seed {seed})"
    );
}

async fn flood(seed: u64) {
    let app = spawn_app().await;
    let known = Arc::new(Mutex::new(setup(&app).await));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let channels: Vec<Channel> = (0..CONNECTIONS)
        .map(|_| lazy_channel(app.grpc_addr))
        .collect();
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let state = (
                next.clone(),
                known.clone(),
                tally.clone(),
                app.clock.clone(),
            );
            tokio::spawn(worker(seed, channels[w % CONNECTIONS].clone(), state))
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker finishes");
    }
    let tally = std::mem::take(&mut *tally.lock().expect("tally"));
    println!(
        "{MESSAGES} messages in {:?}; the slowest call took {:?} ({:?})",
        started.elapsed(),
        tally.slowest.0,
        tally.slowest.1
    );
    for (answer, count) in &tally.answers {
        println!("{count:6}  {answer}");
    }
    let failures = &tally.failures;
    assert!(
        failures.is_empty(),
        "{} answers outside the contract (seed {seed}), the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    for method in Method::all() {
        let sent = tally.sent.get(&method).copied().unwrap_or_default();
        assert!(sent >= MESSAGES / 50, "only {sent} messages to {method:?}");
    }
    still_serving(&app).await;
    app.stop().await;
}

/// The users, one of them disabled, and a few real tokens to start from.
async fn setup(app: &TestApp) -> Known {
    let mut known = Known::default();
    let mut rng = Rng::new(0, 0);
    for (name, password, scopes) in messages::USERS {
        known
            .user_ids
            .push(app.add_user(name, password, scopes).await);
        if name == "mallory" {
            disable_user(&app.service, name).await;
            continue;
        }
        for _ in 0..2 {
            let pair = app.login(name, password).await;
            Known::keep(&mut known.access, pair.access_token, &mut rng);
            Known::keep(&mut known.refresh, pair.refresh_token, &mut rng);
        }
    }
    known
}

/// What the workers share: the next message's number, the tokens seen, the tally, the clock.
type Shared = (
    Arc<AtomicUsize>,
    Arc<Mutex<Known>>,
    Arc<Mutex<Tally>>,
    Arc<ManualClock>,
);

/// Sends messages until all have been sent, judging each answer. Every thousand messages the clock
/// moves past the reuse grace, so that spent tokens come back as reuse, not retries.
async fn worker(seed: u64, channel: Channel, (next, known, tally, clock): Shared) {
    loop {
        let index = next.fetch_add(1, Ordering::SeqCst);
        if index >= MESSAGES {
            return;
        }
        if index % 1000 == 999 {
            clock.advance(11_000);
        }
        let mut rng = Rng::new(seed, index as u64);
        let method = pick_method(&mut rng);
        let (body, authorization) = {
            let known = known.lock().expect("known tokens");
            let body = messages::body(method, &mut rng, &known);
            (body, messages::authorization(&mut rng, &known))
        };
        let sent = Instant::now();
        let outcome =
            wire::call(channel.clone(), method, body.clone(), authorization.clone()).await;
        let took = sent.elapsed();
        if let (Method::Login | Method::Refresh, Outcome::Answered(answer)) = (method, &outcome)
            && let Ok(pair) = pb::TokenResponse::decode(answer.as_slice())
        {
            let mut known = known.lock().expect("known tokens");
            Known::keep(&mut known.access, pair.access_token, &mut rng);
            Known::keep(&mut known.refresh, pair.refresh_token, &mut rng);
        }
        let shot = Shot {
            index,
            method,
            body,
            authorization,
        };
        tally.lock().expect("tally").record(&shot, &outcome, took);
    }
}

fn pick_method(rng: &mut Rng) -> Method {
    let all = Method::all();
    let mut roll = rng.below(all.iter().map(|m| weight(*m)).sum());
    for method in all {
        if roll < weight(method) {
            return method;
        }
        roll -= weight(method);
    }
    unreachable!("the roll is below the sum of the weights")
}

/// After the flood, on a new connection: a new user logs in, refreshes, and the token is active.
async fn still_serving(app: &TestApp) {
    app.add_user("carol", "after the storm", &["read"]).await;
    let mut client = AuthServiceClient::new(lazy_channel(app.grpc_addr));
    let request = pb::LoginRequest {
        username: "carol".into(),
        password: "after the storm".into(),
        ..Default::default()
    };
    let pair = client
        .login(request)
        .await
        .expect("a login after the flood")
        .into_inner();
    let pair = refresh_with(&client, &pair.refresh_token)
        .await
        .expect("a refresh after the flood");
    assert!(introspect_with(&client, &pair.access_token).await.active);
}

/// Counts panics on the flood's threads, whoever's code they ran (tokio catches a panic in a task,
/// and hyper one in a connection: only the hook sees them all).
fn panics_in_flood_threads() -> &'static AtomicUsize {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(THREAD) {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    &PANICS
}
