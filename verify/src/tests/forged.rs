//! The forged-token matrix: everything Introspect refuses, refused here for the same reason.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use super::{LEEWAY, NOW, fixture, fixture_with};
use crate::{
    VerifyError as E,
    testkeys::{TestKey, claims as issued},
};

#[test]
fn a_genuine_token_is_accepted_with_every_algorithm_latchkey_signs_with() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let f = fixture_with(Some(std::time::Duration::from_secs(10)), alg);
        let claims = f.verifier.verify(&f.token()).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.sid.as_str()),
            ("user-1", "session-1")
        );
        assert_eq!(
            (claims.jti.as_str(), claims.client_id.as_str()),
            ("jti-1", "default")
        );
        assert_eq!((claims.iat, claims.exp), (NOW, NOW + 900));
        assert!(claims.has_scope("write"));
    }
}

#[test]
fn unsigned_and_algorithm_swapped_tokens_are_refused() {
    let f = fixture();
    let genuine = f.token();
    let body = genuine.split('.').nth(1).unwrap();
    let none = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#,
        f.key.kid
    ));
    assert_eq!(
        f.verifier.verify(&format!("{none}.{body}.")),
        Err(E::Malformed)
    );

    // HS256 "signed" with the public key, the classic confusion attack: refused, whatever the
    // bytes an attacker guesses the verifier would use as the secret.
    let jwk = serde_json::to_value(&f.key.jwk).unwrap();
    let x = jwk["x"].as_str().unwrap();
    let raw = URL_SAFE_NO_PAD.decode(x).unwrap();
    for secret in [raw.as_slice(), x.as_bytes(), jwk.to_string().as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(f.key.kid.clone());
        let forged = encode(&header, &issued(NOW), &EncodingKey::from_secret(secret)).unwrap();
        assert_eq!(f.verifier.verify(&forged), Err(E::WrongAlgorithm));
    }
}

#[test]
fn tokens_signed_by_other_keys_are_refused_whatever_their_header_points_at() {
    let f = fixture();
    let attacker = TestKey::generate(Algorithm::EdDSA);
    let claims = issued(NOW);
    assert_eq!(
        f.verifier.verify(&attacker.sign(&claims)),
        Err(E::UnknownKey)
    );

    let mut header = attacker.header();
    header.kid = Some(f.key.kid.clone());
    assert_eq!(
        f.verifier.verify(&attacker.sign_with(&header, &claims)),
        Err(E::BadSignature)
    );
    // Headers that point at the attacker's key are never followed, under either kid.
    for kid in [f.key.kid.clone(), attacker.kid.clone()] {
        let mut with_jku = attacker.header();
        with_jku.kid = Some(kid.clone());
        with_jku.jku = Some("https://attacker.example/jwks.json".into());
        let mut with_x5u = attacker.header();
        with_x5u.kid = Some(kid.clone());
        with_x5u.x5u = Some("https://attacker.example/cert.pem".into());
        let mut with_jwk = attacker.header();
        with_jwk.kid = Some(kid.clone());
        with_jwk.jwk = Some(attacker.jwk.clone());
        for header in [with_jku, with_x5u, with_jwk] {
            let refusal = f
                .verifier
                .verify(&attacker.sign_with(&header, &claims))
                .unwrap_err();
            assert!(
                matches!(refusal, E::BadSignature | E::UnknownKey),
                "{refusal:?}"
            );
        }
    }
}

#[test]
fn a_tampered_payload_or_a_missing_kid_is_refused() {
    let f = fixture();
    let genuine = f.token();
    let parts: Vec<&str> = genuine.split('.').collect();
    let other = f.token_with(json!({ "sub": "admin" }));
    let other_body = other.split('.').nth(1).unwrap();
    let tampered = format!("{}.{other_body}.{}", parts[0], parts[2]);
    assert_eq!(f.verifier.verify(&tampered), Err(E::BadSignature));
    let mut header = f.key.header();
    header.kid = None;
    let no_kid = f.key.sign_with(&header, &issued(NOW));
    assert_eq!(f.verifier.verify(&no_kid), Err(E::UnknownKey));
}

#[test]
fn only_access_tokens_of_this_issuer_and_audience_are_accepted() {
    let f = fixture();
    let claims = issued(NOW);
    for typ in [Some("JWT"), Some("at+jwt+x"), None] {
        let mut header = f.key.header();
        header.typ = typ.map(str::to_owned);
        assert_eq!(
            f.verifier.verify(&f.key.sign_with(&header, &claims)),
            Err(E::WrongType)
        );
    }
    let mut header = f.key.header();
    header.typ = Some("application/AT+JWT".into());
    assert!(
        f.verifier
            .verify(&f.key.sign_with(&header, &claims))
            .is_ok()
    );
    assert_eq!(
        f.verifier.verify(&f.token_with(json!({ "iss": "evil" }))),
        Err(E::WrongIssuer)
    );
    assert_eq!(
        f.verifier
            .verify(&f.token_with(json!({ "aud": "billing" }))),
        Err(E::WrongAudience)
    );
}

#[test]
fn times_honour_the_leeway_exactly_as_introspect() {
    let f = fixture();
    let expired = f.token_with(json!({ "exp": NOW - LEEWAY }));
    assert_eq!(f.verifier.verify(&expired), Err(E::Expired));
    assert!(
        f.verifier
            .verify(&f.token_with(json!({ "exp": NOW - LEEWAY + 1 })))
            .is_ok()
    );
    let early = f.token_with(json!({ "nbf": NOW + LEEWAY + 1 }));
    assert_eq!(f.verifier.verify(&early), Err(E::NotYetValid));
    assert!(
        f.verifier
            .verify(&f.token_with(json!({ "nbf": NOW + LEEWAY })))
            .is_ok()
    );
    let from_the_future = f.token_with(json!({ "iat": NOW + LEEWAY + 1 }));
    assert_eq!(f.verifier.verify(&from_the_future), Err(E::NotYetValid));
}

#[test]
fn tokens_missing_any_claim_latchkey_issues_are_refused() {
    let f = fixture();
    for name in [
        "exp",
        "iat",
        "nbf",
        "iss",
        "aud",
        "sub",
        "jti",
        "sid",
        "scope",
        "client_id",
    ] {
        let token = f.token_with(json!({ name: null }));
        assert_eq!(
            f.verifier.verify(&token),
            Err(E::BadClaims),
            "without {name}"
        );
    }
    let wrong_type = f.token_with(json!({ "exp": "tomorrow" }));
    assert_eq!(f.verifier.verify(&wrong_type), Err(E::BadClaims));
}

#[test]
fn garbage_and_oversized_tokens_are_malformed() {
    let f = fixture();
    for garbage in ["", "garbage", "a.b.c", "...", "eyJ.eyJ.eyJ"] {
        assert_eq!(f.verifier.verify(garbage), Err(E::Malformed), "{garbage:?}");
    }
    let huge = format!("{}{}", f.token(), "A".repeat(8 * 1024));
    assert_eq!(f.verifier.verify(&huge), Err(E::Malformed));
}
