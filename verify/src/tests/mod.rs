//! Unit tests of the verifier over hand-filled state and a clock the tests move: no server, no
//! sleeps. The behaviour against a server (the tasks, the feed, reconnection) is in `tests/`.

mod forged;
mod layer;
mod props;
mod state;

use std::{sync::Arc, time::Duration};

use jsonwebtoken::Algorithm;
use serde_json::Value;

use crate::{
    Tasks, Verifier,
    clock::manual::ManualClock,
    jwks::{Expectations, KeySet},
    pb::RevocationEvent,
    testkeys::{AUDIENCE, ISSUER, TestKey, jwks},
    verifier::{Inner, Settings},
};

const NOW: i64 = 1_700_000_000;
const LEEWAY: i64 = 5;

/// A verifier loaded with one key and a heard feed, at [`NOW`] on a manual clock.
struct Fixture {
    clock: Arc<ManualClock>,
    key: TestKey,
    verifier: Verifier,
}

fn settings(max_staleness: Option<Duration>) -> Settings {
    Settings {
        expect: Expectations {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
        },
        leeway: LEEWAY,
        max_staleness_ms: max_staleness.map(|d| d.as_millis() as u64),
        cache_capacity: 1_024,
    }
}

fn fixture_with(max_staleness: Option<Duration>, alg: Algorithm) -> Fixture {
    let clock = Arc::new(ManualClock::at(NOW));
    let inner = Inner::new(settings(max_staleness), clock.clone());
    let key = TestKey::generate(alg);
    let expect = &inner.settings.expect;
    inner.install_keys(KeySet::parse(&jwks(&[&key]), expect).unwrap());
    let verifier = Verifier {
        inner: Arc::new(inner),
        _tasks: Arc::new(Tasks(Vec::new())),
    };
    let fixture = Fixture {
        clock,
        key,
        verifier,
    };
    fixture.heartbeat();
    fixture
}

fn fixture() -> Fixture {
    fixture_with(Some(Duration::from_secs(10)), Algorithm::EdDSA)
}

impl Fixture {
    fn inner(&self) -> &Inner {
        &self.verifier.inner
    }

    fn token(&self) -> String {
        self.key.sign(&crate::testkeys::claims(NOW))
    }

    /// A token with some claims changed (`null` removes one).
    fn token_with(&self, changes: Value) -> String {
        let mut claims = crate::testkeys::claims(NOW);
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        self.key.sign(&claims)
    }

    fn heartbeat(&self) {
        let seq = self.inner().revocations.last_seq();
        self.hear(RevocationEvent {
            seq,
            target: None,
            expires_at: 0,
        });
    }

    fn hear(&self, event: RevocationEvent) {
        crate::feed::hear(self.inner(), event);
    }
}
