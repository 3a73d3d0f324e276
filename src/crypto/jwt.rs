//! Access tokens: JWTs per RFC 9068 (`typ: at+jwt`), checked per RFC 8725. Verification trusts only
//! keys we hold, found by `kid`, with the algorithm of that key; header members that point at other
//! keys (`jku`, `x5u`, `jwk`) are never followed. Time is checked here against the caller's clock,
//! not inside jsonwebtoken, so that tests control it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Header, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};

use super::{CryptoError, keys::SigningKey};

pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The claims of an access token (RFC 9068 §2.2, plus `sid` for the session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub sid: String,
    pub scope: String,
    pub client_id: String,
}

pub fn sign(claims: &AccessClaims, key: &SigningKey) -> Result<String, CryptoError> {
    let mut header = Header::new(key.alg.jwt());
    header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
    header.kid = Some(key.kid.clone());
    sign_with(&header, claims, key)
}

/// `claims` under `header` as a compact JWS (RFC 7515 §7.1), signed by `key`'s private half, which
/// was parsed once: what `jsonwebtoken::encode` makes, without parsing the key again for each
/// token. `header` is written as given (tests forge others with it), but must name the key's
/// algorithm.
pub fn sign_with(
    header: &Header,
    claims: &impl Serialize,
    key: &SigningKey,
) -> Result<String, CryptoError> {
    if header.alg != key.alg.jwt() {
        return Err(CryptoError(format!(
            "a {} key cannot sign a {:?} header",
            key.alg.name(),
            header.alg
        )));
    }
    let json = |e: serde_json::Error| CryptoError(format!("signing failed: {e}"));
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).map_err(json)?);
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(json)?);
    let message = format!("{header}.{claims}");
    let signature = key.private.expose().sign(message.as_bytes())?;
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// What an access token must match to be accepted.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    pub audience: String,
    /// Tolerated clock skew on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: i64,
}

/// Why a token was refused; callers treat every case alike (inactive), this is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    UnknownKey,
    WrongType,
    BadSignatureOrClaims,
    Expired,
    NotYetValid,
}

/// The `kid` a token names, if it is a JWT at all.
pub fn key_id(token: &str) -> Result<String, Rejection> {
    let header = decode_header(token).map_err(|_| Rejection::Malformed)?;
    header.kid.ok_or(Rejection::UnknownKey)
}

/// Verifies `token` with `key` (the key its `kid` named) at Unix second `now`.
pub fn verify(
    token: &str,
    key: &SigningKey,
    expect: &Expectations,
    now: i64,
) -> Result<AccessClaims, Rejection> {
    let header = decode_header(token).map_err(|_| Rejection::Malformed)?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(Rejection::WrongType);
    }
    let mut validation = Validation::new(key.alg.jwt());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub", "jti"]);
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);
    let claims = decode::<AccessClaims>(token, &key.decoding, &validation)
        .map_err(|_| Rejection::BadSignatureOrClaims)?
        .claims;
    in_time(&claims, expect, now)?;
    Ok(claims)
}

/// The time rules alone, for claims verified earlier: `exp`, `nbf` and `iat` against `now` (Unix
/// seconds), with the leeway.
pub fn in_time(claims: &AccessClaims, expect: &Expectations, now: i64) -> Result<(), Rejection> {
    if now >= claims.exp + expect.leeway {
        return Err(Rejection::Expired);
    }
    if now + expect.leeway < claims.nbf || now + expect.leeway < claims.iat {
        return Err(Rejection::NotYetValid);
    }
    Ok(())
}

/// A token's fingerprint (SHA-256): how a verified token is remembered without keeping the token.
pub fn fingerprint(token: &str) -> [u8; 32] {
    let mut fingerprint = [0; 32];
    fingerprint.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    );
    fingerprint
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::EncodingKey;

    use crate::crypto::keys::SigningAlg;

    const NOW: i64 = 1_700_000_000;

    fn key(alg: SigningAlg) -> SigningKey {
        SigningKey::from_pkcs8(alg, &alg.generate_pkcs8().unwrap()).unwrap()
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "latchkey".into(),
            sub: "u1".into(),
            aud: "latchkey".into(),
            exp: NOW + 900,
            iat: NOW,
            nbf: NOW,
            jti: "j1".into(),
            sid: "s1".into(),
            scope: "read".into(),
            client_id: "default".into(),
        }
    }

    fn expect() -> Expectations {
        Expectations {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            leeway: 5,
        }
    }

    #[test]
    fn a_signed_token_verifies_with_every_algorithm() {
        for alg in [SigningAlg::EdDsa, SigningAlg::Es256, SigningAlg::Rs256] {
            let k = key(alg);
            let token = sign(&claims(), &k).unwrap();
            assert_eq!(key_id(&token).unwrap(), k.kid);
            assert_eq!(verify(&token, &k, &expect(), NOW).unwrap(), claims());
        }
    }

    /// Ed25519 signatures are deterministic: a token signed with the key parsed once is, byte for
    /// byte, the one jsonwebtoken signs from the PKCS#8 bytes.
    #[test]
    fn a_token_is_byte_for_byte_what_jsonwebtoken_would_sign() {
        let der = SigningAlg::EdDsa.generate_pkcs8().unwrap();
        let k = SigningKey::from_pkcs8(SigningAlg::EdDsa, &der).unwrap();
        let mut header = Header::new(k.alg.jwt());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        header.kid = Some(k.kid.clone());
        let theirs =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_ed_der(&der)).unwrap();
        assert_eq!(sign(&claims(), &k).unwrap(), theirs);
    }

    #[test]
    fn a_header_naming_another_algorithm_than_the_keys_is_not_signed() {
        let k = key(SigningAlg::EdDsa);
        let header = Header::new(jsonwebtoken::Algorithm::RS256);
        assert!(sign_with(&header, &claims(), &k).is_err());
    }

    #[test]
    fn expiry_and_not_before_honour_the_leeway_exactly() {
        let k = key(SigningAlg::EdDsa);
        let token = sign(&claims(), &k).unwrap();
        assert!(verify(&token, &k, &expect(), NOW + 900 + 4).is_ok());
        assert_eq!(
            verify(&token, &k, &expect(), NOW + 900 + 5),
            Err(Rejection::Expired)
        );
        assert!(verify(&token, &k, &expect(), NOW - 5).is_ok());
        assert_eq!(
            verify(&token, &k, &expect(), NOW - 6),
            Err(Rejection::NotYetValid)
        );
    }

    #[test]
    fn wrong_issuer_audience_key_or_type_is_refused() {
        let k = key(SigningAlg::EdDsa);
        let token = sign(&claims(), &k).unwrap();
        let other = Expectations {
            audience: "billing".into(),
            ..expect()
        };
        assert_eq!(
            verify(&token, &k, &other, NOW),
            Err(Rejection::BadSignatureOrClaims)
        );
        let other = Expectations {
            issuer: "evil".into(),
            ..expect()
        };
        assert_eq!(
            verify(&token, &k, &other, NOW),
            Err(Rejection::BadSignatureOrClaims)
        );
        assert_eq!(
            verify(&token, &key(SigningAlg::EdDsa), &expect(), NOW),
            Err(Rejection::BadSignatureOrClaims)
        );
        let mut header = Header::new(k.alg.jwt());
        header.typ = Some("JWT".into());
        let plain = sign_with(&header, &claims(), &k).unwrap();
        assert_eq!(
            verify(&plain, &k, &expect(), NOW),
            Err(Rejection::WrongType)
        );
    }

    #[test]
    fn alg_none_and_algorithm_swaps_are_refused() {
        let k = key(SigningAlg::EdDsa);
        let token = sign(&claims(), &k).unwrap();
        let body = token.split('.').nth(1).unwrap();
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
        assert!(verify(&format!("{none}.{body}."), &k, &expect(), NOW).is_err());
        let hs = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"}}"#,
            k.kid
        ));
        assert!(verify(&format!("{hs}.{body}.AAAA"), &k, &expect(), NOW).is_err());
        assert_eq!(
            verify("garbage", &k, &expect(), NOW),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn tokens_missing_required_claims_are_refused() {
        let k = key(SigningAlg::EdDsa);
        let mut header = Header::new(k.alg.jwt());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        let partial = serde_json::json!({"iss": "latchkey", "aud": "latchkey", "exp": NOW + 60, "iat": NOW, "nbf": NOW});
        let token = sign_with(&header, &partial, &k).unwrap();
        assert_eq!(
            verify(&token, &k, &expect(), NOW),
            Err(Rejection::BadSignatureOrClaims)
        );
    }
}
