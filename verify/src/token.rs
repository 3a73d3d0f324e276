//! One access token checked against the keys in memory, exactly as latchkey's Introspect checks it
//! (RFC 9068, RFC 8725): the key named by `kid` and only that key's algorithm, `typ`, the required
//! claims, `iss`, `aud`, then `exp`, `nbf` and `iat` against the caller's clock with a leeway.
//! Header members that point at other keys (`jku`, `x5u`, `jwk`) are never followed: only keys
//! fetched from latchkey are ever used.

use jsonwebtoken::{decode, decode_header, errors::ErrorKind};
use serde::Deserialize;

use crate::{Claims, VerifyError, jwks::KeySet};

/// Larger tokens are refused before any work, as latchkey refuses them.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

const ACCESS_TOKEN_TYPES: [&str; 2] = ["at+jwt", "application/at+jwt"];

/// The claims as latchkey issues them: every one is required (`nbf` too, as Introspect requires).
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

/// Verifies `token` at Unix second `now`, tolerating `leeway` seconds of clock skew.
pub(crate) fn check(
    token: &str,
    keys: &KeySet,
    leeway: i64,
    now: i64,
) -> Result<Claims, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed);
    }
    let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
    let typ_ok = header.typ.as_deref().is_some_and(|typ| {
        ACCESS_TOKEN_TYPES
            .iter()
            .any(|t| typ.eq_ignore_ascii_case(t))
    });
    if !typ_ok {
        return Err(VerifyError::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
    let key = keys.get(kid).ok_or(VerifyError::UnknownKey)?;
    let wire = decode::<Wire>(token, &key.decoding, &key.validation)
        .map_err(|e| refusal(e.kind()))?
        .claims;
    if now >= wire.exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    let soon = now.saturating_add(leeway);
    if soon < wire.nbf || soon < wire.iat {
        return Err(VerifyError::NotYetValid);
    }
    Ok(Claims {
        sub: wire.sub,
        sid: wire.sid,
        jti: wire.jti,
        scope: wire.scope,
        client_id: wire.client_id,
        iat: wire.iat,
        exp: wire.exp,
        iss: wire.iss,
        aud: wire.aud,
    })
}

fn refusal(kind: &ErrorKind) -> VerifyError {
    match kind {
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            VerifyError::Malformed
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::InvalidKeyFormat => VerifyError::WrongAlgorithm,
        ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
        ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Json(_) => VerifyError::BadClaims,
        // Anything else jsonwebtoken may refuse for: the signature did not hold.
        _ => VerifyError::BadSignature,
    }
}
