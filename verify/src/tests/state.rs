//! Revocations, staleness, the cache and the keys, on a clock the tests move.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::{LEEWAY, NOW, fixture, fixture_with};
use crate::{
    VerifyError as E,
    jwks::KeySet,
    pb::{RevocationEvent, UserCutoff, revocation_event::Target},
    testkeys::{TestKey, jwks},
};

fn event(seq: u64, target: Target) -> RevocationEvent {
    RevocationEvent {
        seq,
        target: Some(target),
        expires_at: NOW + 900 + LEEWAY,
    }
}

fn cutoff(seq: u64, user: &str, not_before: i64) -> RevocationEvent {
    let user = UserCutoff {
        user_id: user.into(),
        not_before,
    };
    event(seq, Target::User(user))
}

#[test]
fn each_kind_of_revocation_kills_the_tokens_it_names() {
    for revocation in [
        event(1, Target::SessionId("session-1".into())),
        event(1, Target::Jti("jti-1".into())),
        cutoff(1, "user-1", NOW + 1),
    ] {
        let f = fixture();
        assert!(f.verifier.verify(&f.token()).is_ok());
        f.hear(revocation);
        assert_eq!(f.verifier.verify(&f.token()), Err(E::Revoked));
        // Other sessions, tokens and users are untouched.
        let other = f.token_with(json!({ "sid": "session-2", "jti": "jti-2", "sub": "user-2" }));
        assert!(f.verifier.verify(&other).is_ok());
    }
}

#[test]
fn a_user_cutoff_kills_tokens_issued_before_it_and_not_at_it() {
    let f = fixture();
    f.hear(cutoff(1, "user-1", NOW));
    assert!(
        f.verifier.verify(&f.token()).is_ok(),
        "iat == not_before lives"
    );
    let earlier = f.token_with(json!({ "iat": NOW - 1 }));
    assert_eq!(f.verifier.verify(&earlier), Err(E::Revoked));
    // A later, lower cutoff never lowers it.
    f.hear(cutoff(2, "user-1", NOW - 100));
    assert_eq!(f.verifier.verify(&earlier), Err(E::Revoked));
}

#[test]
fn a_cached_token_is_still_checked_for_revocation_and_expiry() {
    let f = fixture();
    let token = f.token();
    let with_other_jti = f.token_with(json!({ "jti": "jti-2" }));
    assert!(f.verifier.verify(&token).is_ok());
    assert!(f.verifier.verify(&with_other_jti).is_ok());
    assert_eq!(f.inner().cache_len(), 2, "both tokens are cached");
    f.heartbeat();
    assert!(
        f.verifier.verify(&token).is_ok(),
        "a heartbeat changes nothing"
    );
    f.hear(event(1, Target::Jti("jti-1".into())));
    assert_eq!(f.verifier.verify(&token), Err(E::Revoked));
    assert!(f.verifier.verify(&with_other_jti).is_ok());
    assert_eq!(
        f.verifier.verify(&token),
        Err(E::Revoked),
        "and stays revoked"
    );
    f.clock
        .advance(Duration::from_secs(900 + LEEWAY as u64 - 1));
    f.heartbeat();
    assert!(f.verifier.verify(&with_other_jti).is_ok());
    f.clock.advance(Duration::from_secs(1));
    f.heartbeat();
    assert_eq!(f.verifier.verify(&with_other_jti), Err(E::Expired));
}

#[test]
fn silence_longer_than_max_staleness_refuses_every_token_until_heard_again() {
    let f = fixture();
    let token = f.token();
    assert!(f.verifier.verify(&token).is_ok());
    f.clock.advance(Duration::from_secs(10));
    assert!(
        f.verifier.verify(&token).is_ok(),
        "10 s of silence is within the bound"
    );
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(f.verifier.verify(&token), Err(E::Stale));
    assert_eq!(E::Stale.reason(), "REVOCATIONS_STALE");
    // Not cached tokens alike.
    assert_eq!(
        f.verifier.verify(&f.token_with(json!({ "jti": "new" }))),
        Err(E::Stale)
    );
    // Any message counts, an event as well as a heartbeat.
    f.hear(event(1, Target::Jti("unrelated".into())));
    assert!(f.verifier.verify(&token).is_ok());
}

#[test]
fn failing_open_ignores_silence_but_not_an_unloaded_feed() {
    let f = fixture_with(None, Algorithm::EdDSA);
    let token = f.token();
    f.clock.advance(Duration::from_secs(600));
    assert!(f.verifier.verify(&token).is_ok());

    let unloaded = fixture_with(None, Algorithm::EdDSA);
    let inner = crate::verifier::Inner::new(super::settings(None), unloaded.clock.clone());
    inner.install_keys(KeySet::parse(&jwks(&[&unloaded.key]), &inner.settings.expect).unwrap());
    assert_eq!(
        inner.verify(&unloaded.token()),
        Err(E::Stale),
        "nothing heard yet"
    );
}

#[test]
fn events_are_forgotten_once_no_token_they_concern_can_be_valid() {
    let f = fixture();
    f.hear(event(1, Target::SessionId("s".into())));
    let revocations = &f.inner().revocations;
    revocations.forget_expired(NOW + 900 + 2 * LEEWAY - 1, LEEWAY);
    assert_eq!(revocations.len(), 1);
    revocations.forget_expired(NOW + 900 + 2 * LEEWAY, LEEWAY);
    assert_eq!(revocations.len(), 0);
    assert_eq!(
        revocations.last_seq(),
        1,
        "the position in the feed is kept"
    );
}

#[tokio::test]
async fn an_unknown_kid_asks_for_a_refetch_and_a_retired_key_empties_the_cache() {
    let f = fixture();
    let newer = TestKey::generate(Algorithm::EdDSA);
    let newer_token = newer.sign(&crate::testkeys::claims(NOW));
    assert_eq!(f.verifier.verify(&newer_token), Err(E::UnknownKey));
    let asked = tokio::time::timeout(Duration::ZERO, f.inner().refetch.notified()).await;
    assert!(asked.is_ok(), "no refetch was asked for");

    let token = f.token();
    assert!(f.verifier.verify(&token).is_ok());
    let expect = &f.inner().settings.expect;
    f.inner()
        .install_keys(KeySet::parse(&jwks(&[&f.key, &newer]), expect).unwrap());
    assert!(
        f.verifier.verify(&newer_token).is_ok(),
        "the rotated-in key is used"
    );
    assert_eq!(f.inner().cache_len(), 2, "adding a key keeps the cache");
    f.inner()
        .install_keys(KeySet::parse(&jwks(&[&newer]), expect).unwrap());
    assert_eq!(
        f.verifier.verify(&token),
        Err(E::UnknownKey),
        "retired, cached or not"
    );
    assert!(f.verifier.verify(&newer_token).is_ok());
}

#[test]
fn keys_that_cannot_sign_access_tokens_are_left_out() {
    let key = TestKey::generate(Algorithm::EdDSA);
    let expect = &super::settings(None).expect;
    let mut without_alg = serde_json::to_value(&key.jwk).unwrap();
    without_alg.as_object_mut().unwrap().remove("alg");
    let hmac = json!({ "kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "h" });
    let mut for_encryption = serde_json::to_value(&key.jwk).unwrap();
    for_encryption["use"] = json!("enc");
    for jwk in [without_alg, hmac, for_encryption] {
        let set = json!({ "keys": [jwk] }).to_string();
        assert!(KeySet::parse(&set, expect).unwrap().is_empty(), "{set}");
    }
    assert!(KeySet::parse("not json", expect).is_err());
}
