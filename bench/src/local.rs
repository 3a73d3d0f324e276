//! The raw rates no server can beat, measured on this machine beside a run: an argon2id hash at
//! the server's default cost (what every login pays), and an EdDSA verification of an access token
//! (what Introspect and ext_authz Check pay when nothing is cached). One thread per CPU, each
//! hashing or verifying in a loop, timed per call like the remote ops.

use std::{thread, time::Instant};

use anyhow::Context as _;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use latchkey::crypto::{
    jwt::{self, AccessClaims, Expectations},
    keys::{SigningAlg, SigningKey},
    password::{self, Cost},
};

use crate::tally::{Summary, Tally, Window};

/// The token's clock: verification is timed against a fixed instant inside its lifetime, so the
/// measurement reads no clock but the stopwatch.
const NOW: i64 = 1_700_000_000;

/// Threads the local ops run on: one per CPU.
pub fn threads() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// How the memory of an argon2 hash is laid out.
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// As the server's hashing workers lay theirs out (on 2 MiB pages where the kernel grants
    /// them): the hash alone, the floor under any login.
    Server,
    /// A plain `Vec`, as the argon2 crate's callers get it by default (4 KiB pages, unless the
    /// kernel's transparent huge pages are `always`, when both layouts are the same).
    Plain,
}

/// argon2id at the server's default cost; each thread hashes into one memory block of its own,
/// allocated once.
pub fn argon2(window: Window, layout: Layout) -> anyhow::Result<Summary> {
    let cost = Cost::default();
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let blocks = params.block_count();
    let argon2 = &Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    Ok(on_every_cpu(window, || {
        let mut memory = match layout {
            Layout::Server => password::blocks(blocks),
            Layout::Plain => vec![Block::default(); blocks],
        };
        let mut out = [0u8; 32];
        move || {
            argon2
                .hash_password_into_with_memory(
                    b"correct horse battery staple",
                    b"a sixteen-byte salt",
                    &mut out,
                    &mut memory,
                )
                .map_err(|e| format!("ARGON2: {e}"))
        }
    }))
}

/// EdDSA verification of one access token with every claim the server issues, by the server's
/// own code (signature, `typ`, issuer, audience, times).
pub fn eddsa(window: Window) -> anyhow::Result<Summary> {
    let alg = SigningAlg::EdDsa;
    let pkcs8 = alg.generate_pkcs8().context("an EdDSA key")?;
    let key = SigningKey::from_pkcs8(alg, &pkcs8).context("an EdDSA key")?;
    let claims = AccessClaims {
        iss: "latchkey".into(),
        sub: "0190a8c4-0000-7000-8000-000000000000".into(),
        aud: "latchkey".into(),
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "0190a8c4-0000-7000-8000-000000000001".into(),
        sid: "0190a8c4-0000-7000-8000-000000000002".into(),
        scope: "read write".into(),
        client_id: "default".into(),
    };
    let token = jwt::sign(&claims, &key).context("signing the token")?;
    let expect = Expectations {
        issuer: claims.iss.clone(),
        audience: claims.aud.clone(),
        leeway: 5,
    };
    let (key, token, expect) = (&key, token.as_str(), &expect);
    Ok(on_every_cpu(window, || {
        move || {
            jwt::verify(token, key, expect, NOW)
                .map(drop)
                .map_err(|rejection| format!("{rejection:?}"))
        }
    }))
}

/// Runs the call made by `make` (once per thread) on every CPU until the window closes.
fn on_every_cpu<M, C>(window: Window, make: M) -> Summary
where
    M: Fn() -> C + Sync,
    C: FnMut() -> Result<(), String>,
{
    let make = &make;
    let total = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads())
            .map(|_| {
                scope.spawn(move || {
                    let mut call = make();
                    let mut tally = Tally::default();
                    while Instant::now() < window.until {
                        let started = Instant::now();
                        let outcome = call();
                        tally.record(&window, started, outcome);
                    }
                    tally
                })
            })
            .collect();
        let mut total = Tally::default();
        for worker in workers {
            match worker.join() {
                Ok(tally) => total.merge(tally),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        total
    });
    total.summary(Instant::now().saturating_duration_since(window.measure_from))
}
