//! The verifier against a stand-in latchkey over real sockets: loading, the feed (revocations,
//! resumption by `seq`, staleness and recovery) and key refetches. Timings are generous: these
//! check behaviour; the 1 s promise is measured against the real server by its own tests.

mod support;

use std::time::Duration;

use jsonwebtoken::Algorithm;
use latchkey_verify::{Certificate, ClientTlsConfig, ConnectError, Verifier, VerifyError};
use serde_json::json;
use support::{
    Latchkey, eventually,
    pb::revocation_event::Target,
    testkeys::{TestKey, claims, jwks},
    tls_identity,
};
use tokio::time::timeout;

const SOON: Duration = Duration::from_secs(3);

fn now() -> i64 {
    let since_epoch = std::time::UNIX_EPOCH.elapsed().unwrap();
    since_epoch.as_secs() as i64
}

/// A token of session `sid` with its own `jti`.
fn token(key: &TestKey, sid: &str) -> String {
    let mut claims = claims(now());
    claims["sid"] = json!(sid);
    claims["jti"] = json!(format!("jti-of-{sid}"));
    key.sign(&claims)
}

async fn started(max_staleness: Option<Duration>) -> (Latchkey, TestKey, Verifier) {
    let key = TestKey::generate(Algorithm::EdDSA);
    let latchkey = Latchkey::start(jwks(&[&key])).await;
    let verifier = Verifier::builder(latchkey.url())
        .max_staleness(max_staleness)
        .connect()
        .await
        .unwrap();
    timeout(SOON, verifier.ready())
        .await
        .expect("ready in time");
    (latchkey, key, verifier)
}

#[tokio::test]
async fn revocations_arrive_and_a_broken_stream_resumes_after_the_last_seq_seen() {
    let (latchkey, key, verifier) = started(Some(Duration::from_secs(10))).await;
    let (first, second) = (token(&key, "s1"), token(&key, "s2"));
    assert!(verifier.verify(&first).is_ok() && verifier.verify(&second).is_ok());

    let seq = latchkey.revoke(Target::SessionId("s1".into()), now() + 900);
    let revoked = || verifier.verify(&first) == Err(VerifyError::Revoked);
    assert!(
        eventually(SOON, revoked).await.is_some(),
        "the revocation did not arrive"
    );

    // Cut, and revoke before the verifier is back: it resumes after `seq` and misses nothing.
    latchkey.cut_streams();
    latchkey.revoke(Target::Jti("jti-of-s2".into()), now() + 900);
    let revoked = || verifier.verify(&second) == Err(VerifyError::Revoked);
    assert!(
        eventually(SOON, revoked).await.is_some(),
        "the missed revocation did not arrive"
    );
    let calls = latchkey.watch_calls();
    assert_eq!(calls[0], 0, "the feed is followed from 0");
    assert!(calls[1..].contains(&seq), "resumed after {seq}: {calls:?}");
}

#[tokio::test]
async fn a_silent_feed_fails_closed_after_max_staleness_and_recovers_by_itself() {
    let (latchkey, key, verifier) = started(Some(Duration::from_millis(500))).await;
    let token = token(&key, "s1");
    assert!(verifier.verify(&token).is_ok());
    latchkey.set_silent(true);
    let stale = || verifier.verify(&token) == Err(VerifyError::Stale);
    let after = eventually(SOON, stale).await.expect("stale once silent");
    assert!(
        after >= Duration::from_millis(300),
        "stale too early: {after:?}"
    );
    latchkey.set_silent(false);
    let fresh = || verifier.verify(&token).is_ok();
    assert!(
        eventually(Duration::from_secs(6), fresh).await.is_some(),
        "no recovery"
    );
}

#[tokio::test]
async fn an_unknown_kid_is_fetched_once_a_second_at_most() {
    let (latchkey, key, verifier) = started(Some(Duration::from_secs(10))).await;
    let newer = TestKey::generate(Algorithm::EdDSA);
    let rotated = token(&newer, "s1");
    let calls_before = latchkey.jwks_calls();
    // A burst of tokens from an unknown key costs one fetch, not one per token.
    for _ in 0..100 {
        assert_eq!(verifier.verify(&rotated), Err(VerifyError::UnknownKey));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(latchkey.jwks_calls() - calls_before <= 1);

    latchkey.set_jwks(jwks(&[&key, &newer]));
    let accepted = || verifier.verify(&rotated).is_ok();
    let took = eventually(SOON, accepted)
        .await
        .expect("the new key was fetched");
    assert!(
        took <= Duration::from_millis(1_500),
        "refetched after {took:?}"
    );
    assert!(
        verifier.verify(&token(&key, "s2")).is_ok(),
        "the old key still verifies"
    );
}

#[tokio::test]
async fn an_unreachable_latchkey_is_no_error_but_nothing_verifies() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let verifier = Verifier::builder(url).connect().await.unwrap();
    assert!(
        timeout(Duration::from_millis(300), verifier.ready())
            .await
            .is_err()
    );
    let key = TestKey::generate(Algorithm::EdDSA);
    assert_eq!(
        verifier.verify(&token(&key, "s1")),
        Err(VerifyError::UnknownKey)
    );
    assert!(Verifier::builder("not a url").connect().await.is_err());
}

#[tokio::test]
async fn over_tls_the_verifier_loads_from_a_latchkey_it_trusts() {
    let key = TestKey::generate(Algorithm::EdDSA);
    let (ca, identity) = tls_identity();
    let latchkey = Latchkey::start_tls(jwks(&[&key]), identity).await;
    let url = format!("https://localhost:{}", latchkey.addr.port());
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    let verifier = Verifier::builder(&url).tls(tls).connect().await.unwrap();
    timeout(SOON, verifier.ready())
        .await
        .expect("ready over TLS");
    assert!(verifier.verify(&token(&key, "s1")).is_ok());

    // Not trusting latchkey's CA, it loads nothing; not configuring TLS at all is refused.
    let (other_ca, _) = tls_identity();
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(other_ca));
    let untrusting = Verifier::builder(&url).tls(tls).connect().await.unwrap();
    assert!(
        timeout(Duration::from_millis(500), untrusting.ready())
            .await
            .is_err()
    );
    let refused = Verifier::builder(&url).connect().await.unwrap_err();
    assert!(matches!(refused, ConnectError::TlsMissing), "{refused:?}");
}
