//! Forged and out-of-rule tokens: each is refused by `verify` exactly as Introspect refuses it
//! (`active=false`), the matrix of API.md. How the tokens are made:
//!
//! - headers that point elsewhere (`alg: none`, HS256 "signed" with the server's public key, an
//!   unknown `kid`, `jku`/`x5u`/`jwk` naming the forger's key) and a tampered signature: with a
//!   key of the test's own, which nothing trusts;
//! - the claim rules under a valid signature (`typ`, `iss`, `aud`, `exp`, `nbf`, `iat`, each claim
//!   missing): with a key of the test's own that the server does trust, planted in its store as a
//!   superseded key still published (as `keys rotate` leaves the previous one). The server's own
//!   private key is never read;
//! - genuine tokens out of time: issued by the server with its clock an hour back or ahead; and
//!   genuine tokens before verifiers built for another audience or issuer.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use latchkey::{
    crypto::{
        jwt,
        keys::{SigningAlg, SigningKey},
        seal::MasterKey,
    },
    grpc::pb::TokenResponse,
    service::KeyStatus,
    store::{self, KeyRecord, Mode},
};
use latchkey_verify::{Verifier, VerifierBuilder, VerifyError};
use serde_json::{Value, json};

use crate::helpers::{
    app::{TestApp, master_key, spawn_app_with},
    client::{key_id, tamper_signature},
};

const HOUR_MS: i64 = 3_600_000;

struct Fixture {
    app: TestApp,
    master_key: String,
    verifier: Verifier,
    genuine: TokenResponse,
}

/// A server with a master key the test knows, alice logged in, and a verifier of that server.
async fn fixture() -> Fixture {
    let key = master_key();
    let app = spawn_app_with(|args| args.master_key = Some(key.clone().into())).await;
    let genuine = app.alice().await;
    let verifier = verifier_of(&app, |builder| builder).await;
    assert!(app.introspect(&genuine.access_token).await.active);
    assert!(verifier.verify(&genuine.access_token).is_ok());
    Fixture {
        app,
        master_key: key,
        verifier,
        genuine,
    }
}

/// A verifier of `app`, built with `tweak`, loaded.
async fn verifier_of(
    app: &TestApp,
    tweak: impl FnOnce(VerifierBuilder) -> VerifierBuilder,
) -> Verifier {
    let builder = Verifier::builder(format!("http://{}", app.grpc_addr));
    let verifier = tweak(builder).connect().await.expect("a usable endpoint");
    let loaded = tokio::time::timeout(Duration::from_secs(5), verifier.ready()).await;
    loaded.expect("the verifier loads the keys and the feed");
    verifier
}

/// Asserts that Introspect calls each token inactive and that `verify` refuses it, and why.
async fn refused_alike(f: &Fixture, verifier: &Verifier, cases: &[(String, String, VerifyError)]) {
    for (what, token, why) in cases {
        let introspected = f.app.introspect(token).await;
        assert!(!introspected.active, "{what}: active for Introspect");
        assert_eq!(verifier.verify(token), Err(*why), "{what}");
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The claims of a token, as JSON.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// The header latchkey signs with: EdDSA, `typ: at+jwt`, `kid`.
fn header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    header
}

fn sign(header: &Header, claims: &Value, key: &SigningKey) -> String {
    jwt::sign_with(header, claims, key).expect("signed")
}

/// A fresh Ed25519 key, as latchkey makes them; and its PKCS#8 form.
fn new_key() -> (SigningKey, Vec<u8>) {
    let der = SigningAlg::EdDsa.generate_pkcs8().expect("a key");
    let key = SigningKey::from_pkcs8(SigningAlg::EdDsa, &der).expect("usable");
    (key, der)
}

/// A key of the test's own made trusted by the server: written to its store, sealed as the
/// server seals its keys (the master key's `signing-keys` purpose, bound to the kid), dated just
/// before the active key so that it is a superseded one, still published, and never signs.
async fn plant_key(f: &Fixture) -> SigningKey {
    let (key, der) = new_key();
    let keys = f.app.service.list_keys().unwrap();
    let active = keys.iter().find(|k| k.status == KeyStatus::Active).unwrap();
    let sealer = MasterKey::from_base64(&f.master_key)
        .unwrap()
        .sealer("signing-keys");
    let record = KeyRecord {
        kid: key.kid.clone(),
        alg: SigningAlg::EdDsa.name().into(),
        sealed_private: sealer.seal(&der, key.kid.as_bytes()).unwrap(),
        created_at: active.created_at - 1,
    };
    let store = store::connect(&f.app.database_url, Mode::Existing).await;
    store.unwrap().insert_key(&record).await.unwrap();
    f.app.service.sync_keys().await.unwrap();
    let keys = f.app.service.list_keys().unwrap();
    let planted = keys.iter().find(|k| k.kid == key.kid);
    assert_eq!(
        planted.map(|k| k.status),
        Some(KeyStatus::Published),
        "{keys:?}"
    );
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_point_elsewhere_and_tampered_signatures_are_refused_as_introspect_does() {
    let f = fixture().await;
    let genuine = &f.genuine.access_token;
    let (claims, server_kid) = (claims_of(genuine), key_id(genuine));
    let body = genuine.split('.').nth(1).unwrap();
    let (forger, _) = new_key();
    let mut cases = vec![
        ("garbage".into(), "not-a-jwt".into(), VerifyError::Malformed),
        (
            "alg none".into(),
            format!(
                "{}.{body}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": server_kid}))
            ),
            VerifyError::Malformed,
        ),
        (
            "tampered signature".into(),
            tamper_signature(genuine),
            VerifyError::BadSignature,
        ),
        (
            "unknown kid".into(),
            sign(&header(&forger.kid), &claims, &forger),
            VerifyError::UnknownKey,
        ),
    ];
    // HS256 keyed with the server's public key, in each form a forger might guess the verifier
    // would use as the secret.
    let jwks: Value = serde_json::from_str(&f.app.jwks().await).unwrap();
    let jwk = &jwks["keys"][0];
    let x = jwk["x"].as_str().expect("an Ed25519 key");
    let raw = URL_SAFE_NO_PAD.decode(x).unwrap();
    for (form, secret) in [("raw", raw.as_slice()), ("x", x.as_bytes())] {
        let mut hs256 = header(&server_kid);
        hs256.alg = Algorithm::HS256;
        let token = encode(&hs256, &claims, &EncodingKey::from_secret(secret)).unwrap();
        cases.push((
            format!("HS256 with the public key ({form})"),
            token,
            VerifyError::WrongAlgorithm,
        ));
    }
    // Headers naming the forger's key, under the server's kid (the signature does not hold) or
    // the forger's (unknown): never followed.
    for (kid, why) in [
        (&server_kid, VerifyError::BadSignature),
        (&forger.kid, VerifyError::UnknownKey),
    ] {
        let mut jku = header(kid);
        jku.jku = Some("https://forger.example/jwks.json".into());
        let mut x5u = header(kid);
        x5u.x5u = Some("https://forger.example/cert.pem".into());
        let mut with_jwk = header(kid);
        with_jwk.jwk = Some(forger.jwk.clone());
        for (name, header) in [("jku", jku), ("x5u", x5u), ("jwk", with_jwk)] {
            let what = format!("{name} header, kid {kid}");
            cases.push((what, sign(&header, &claims, &forger), why));
        }
    }
    refused_alike(&f, &f.verifier, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_rules_under_a_valid_signature_are_those_of_introspect() {
    let f = fixture().await;
    let key = plant_key(&f).await;
    let claims = claims_of(&f.genuine.access_token);
    let valid = sign(&header(&key.kid), &claims, &key);
    // The control: the planted key is trusted by both (the verifier fetches it on first sight).
    assert!(f.app.introspect(&valid).await.active);
    let mut accepted = false;
    for _ in 0..300 {
        accepted = f.verifier.verify(&valid).is_ok();
        if accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(accepted, "{:?}", f.verifier.verify(&valid));

    let iat = claims["iat"].as_i64().unwrap();
    let with = |name: &str, value: Value| {
        let mut changed = claims.clone();
        changed[name] = value;
        sign(&header(&key.kid), &changed, &key)
    };
    let mut cases = vec![
        (
            "iss".into(),
            with("iss", json!("elsewhere")),
            VerifyError::WrongIssuer,
        ),
        (
            "aud".into(),
            with("aud", json!("billing")),
            VerifyError::WrongAudience,
        ),
        (
            "expired".into(),
            with("exp", json!(iat - 60)),
            VerifyError::Expired,
        ),
        (
            "nbf ahead".into(),
            with("nbf", json!(iat + 3600)),
            VerifyError::NotYetValid,
        ),
        (
            "iat ahead".into(),
            with("iat", json!(iat + 3600)),
            VerifyError::NotYetValid,
        ),
    ];
    for typ in [Some("JWT"), None] {
        let mut other = header(&key.kid);
        other.typ = typ.map(str::to_owned);
        let what = format!("typ {typ:?}");
        cases.push((what, sign(&other, &claims, &key), VerifyError::WrongType));
    }
    let names = [
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
    ];
    for name in names {
        let mut missing = claims.clone();
        missing.as_object_mut().unwrap().remove(name);
        let token = sign(&header(&key.kid), &missing, &key);
        cases.push((format!("no {name}"), token, VerifyError::BadClaims));
    }
    refused_alike(&f, &f.verifier, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genuine_tokens_out_of_time_or_for_another_audience_are_refused() {
    let f = fixture().await;
    let login = || f.app.login("alice", "correct horse");
    f.app.clock.advance(-HOUR_MS);
    let old = login().await;
    f.app.clock.advance(2 * HOUR_MS);
    let early = login().await;
    f.app.clock.advance(-HOUR_MS);
    let cases = [
        (
            "issued an hour ago".into(),
            old.access_token,
            VerifyError::Expired,
        ),
        (
            "issued an hour ahead".into(),
            early.access_token,
            VerifyError::NotYetValid,
        ),
    ];
    refused_alike(&f, &f.verifier, &cases).await;

    // The audience and issuer a verifier expects are its own settings.
    let genuine = &f.genuine.access_token;
    let billing = verifier_of(&f.app, |builder| builder.audience("billing")).await;
    assert_eq!(billing.verify(genuine), Err(VerifyError::WrongAudience));
    let elsewhere = verifier_of(&f.app, |builder| builder.issuer("elsewhere")).await;
    assert_eq!(elsewhere.verify(genuine), Err(VerifyError::WrongIssuer));
}
