//! Benchmarks of the verifier: `cargo bench -p latchkey-verify --bench verify`. A stand-in
//! latchkey (tests/support) serves the keys and the feed on loopback from a one-thread runtime;
//! the measured loops run on the main thread alone, so each figure is one core's. Machines here
//! are noisy, so each figure is set against a baseline measured in the same run, and each side is
//! measured in interleaved rounds, keeping the best:
//!
//! - (a) `verify` without the cache against a bare jsonwebtoken `decode` of the same token with
//!   the same key and the same validation (the floor of any verifier): ratio of throughputs;
//! - (b) `verify` with the cache over a working set of 10,000 distinct tokens, in ops/s, and as a
//!   multiple of the bare decode.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use latchkey_verify::Verifier;
use serde::Deserialize;
use support::{
    Latchkey,
    testkeys::{AUDIENCE, ISSUER, TestKey, claims, jwks},
};

const ROUNDS: usize = 5;
const SIGNATURE_OPS: usize = 4_000;
const WORKING_SET: usize = 10_000;
const CACHED_PASSES: usize = 50;

/// The claims latchkey issues, as a bare decode would read them.
#[allow(dead_code)]
#[derive(Deserialize)]
struct Wire {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    sid: String,
    scope: String,
    client_id: String,
}

/// Operations per second of `ops` calls of `op` (given the call's number).
fn ops_per_sec(ops: usize, mut op: impl FnMut(usize)) -> f64 {
    let started = Instant::now();
    for i in 0..ops {
        op(i);
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

/// What the loops run against, set up before any is timed.
struct Bench {
    /// Keeps the stand-in latchkey and the verifiers' tasks running.
    _runtime: tokio::runtime::Runtime,
    uncached: Verifier,
    cached: Verifier,
    token: String,
    decoding: DecodingKey,
    validation: Validation,
    working_set: Vec<String>,
}

fn set_up() -> Bench {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let key = TestKey::generate(Algorithm::EdDSA);
    let latchkey = runtime.block_on(Latchkey::start(jwks(&[&key])));
    let connect = |capacity: usize| {
        let builder = Verifier::builder(latchkey.url()).cache_capacity(capacity);
        runtime.block_on(async {
            let verifier = builder.connect().await.expect("a verifier");
            let ready = tokio::time::timeout(Duration::from_secs(10), verifier.ready());
            ready.await.expect("ready");
            verifier
        })
    };
    let (uncached, cached) = (connect(0), connect(32_768));
    let now = std::time::UNIX_EPOCH.elapsed().expect("a clock").as_secs() as i64;
    let working_set: Vec<String> = (0..WORKING_SET)
        .map(|i| {
            let mut claims = claims(now);
            claims["jti"] = format!("jti-{i}").into();
            key.sign(&claims)
        })
        .collect();
    for token in &working_set {
        cached.verify(token).expect("a genuine token");
    }
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub", "jti"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    Bench {
        _runtime: runtime,
        uncached,
        cached,
        token: key.sign(&claims(now)),
        decoding: DecodingKey::from_jwk(&key.jwk).expect("a key"),
        validation,
        working_set,
    }
}

fn main() {
    let b = set_up();
    let (mut bare, mut verify, mut hits) = (0f64, 0f64, 0f64);
    // Refusals are cheaper than acceptances: count them, so that a figure cannot hide one.
    let mut refused = 0usize;
    for _ in 0..ROUNDS {
        bare = bare.max(ops_per_sec(SIGNATURE_OPS, |_| {
            let decoded = decode::<Wire>(black_box(&b.token), &b.decoding, &b.validation);
            refused += usize::from(decoded.is_err());
        }));
        verify = verify.max(ops_per_sec(SIGNATURE_OPS, |_| {
            refused += usize::from(b.uncached.verify(black_box(&b.token)).is_err());
        }));
        hits = hits.max(ops_per_sec(WORKING_SET * CACHED_PASSES, |i| {
            let token = &b.working_set[i % WORKING_SET];
            refused += usize::from(b.cached.verify(black_box(token)).is_err());
        }));
    }
    assert_eq!(refused, 0, "every measured call accepts its token");

    println!(
        "{:<52} {:>12} {:>10}",
        "operation (EdDSA, one thread)", "ops/s", "× bare"
    );
    let row = |name: &str, ops: f64| println!("{name:<52} {ops:>12.0} {:>10.2}", ops / bare);
    row("jsonwebtoken decode (bare, baseline)", bare);
    row("Verifier::verify, no cache", verify);
    row("Verifier::verify, cached, 10,000-token working set", hits);
}
