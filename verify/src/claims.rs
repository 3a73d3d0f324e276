//! What a verified token says ([`Claims`]) and why one was refused ([`VerifyError`]).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `domain` of the `google.rpc.ErrorInfo` that refusals carry, as latchkey's own errors do.
pub const ERROR_DOMAIN: &str = "latchkey";

/// The claims of a verified access token (RFC 9068, plus `sid` for the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user: a stable id, not the username.
    pub sub: String,
    /// The session (token family) the token belongs to.
    pub sid: String,
    /// The token's own id.
    pub jti: String,
    /// The granted scopes, space-separated: ask with [`Claims::has_scope`].
    pub scope: String,
    pub client_id: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (exclusive).
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

impl Claims {
    /// Whether `scope` is among the granted scopes (compared exactly, one whole scope).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split_whitespace().any(|s| s == scope)
    }
}

/// Why a token was refused. Callers answer every kind but [`VerifyError::Stale`] alike
/// (`ACCESS_TOKEN_INVALID`, see [`VerifyError::reason`]); the kinds are for logs and tests. Say
/// the kind to no caller: it would tell a forger how far the forgery got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("not a JWT of acceptable size")]
    Malformed,
    #[error("the token names no key that latchkey publishes")]
    UnknownKey,
    #[error("the token's algorithm is not its key's")]
    WrongAlgorithm,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("not an access token (typ)")]
    WrongType,
    #[error("a required claim is missing or ill-formed")]
    BadClaims,
    #[error("issued by someone else (iss)")]
    WrongIssuer,
    #[error("meant for someone else (aud)")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("revoked (its session, its jti, or every token of its user issued before a cutoff)")]
    Revoked,
    #[error("nothing heard from latchkey's revocation feed within the staleness bound")]
    Stale,
}

impl VerifyError {
    /// The `ErrorInfo` reason from latchkey's contract: `REVOCATIONS_STALE` when the verifier
    /// cannot vouch for any token, `ACCESS_TOKEN_INVALID` for everything else.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Stale => "REVOCATIONS_STALE",
            _ => "ACCESS_TOKEN_INVALID",
        }
    }

    /// The gRPC status code: `UNAVAILABLE` (safe to retry) when stale, else `UNAUTHENTICATED`.
    pub fn code(&self) -> Code {
        match self {
            Self::Stale => Code::Unavailable,
            _ => Code::Unauthenticated,
        }
    }

    /// The status to answer with, carrying an `ErrorInfo` as latchkey's own errors do. Its
    /// message is the same for every invalid token.
    pub fn to_status(&self) -> Status {
        let message = match self {
            Self::Stale => "cannot check revocations at the moment: latchkey is out of reach",
            _ => "access token missing, invalid or revoked",
        };
        let details = ErrorDetails::with_error_info(
            self.reason(),
            ERROR_DOMAIN,
            HashMap::<String, String>::new(),
        );
        Status::with_error_details(self.code(), message, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_whole_words_only() {
        let claims = Claims {
            sub: "u".into(),
            sid: "s".into(),
            jti: "j".into(),
            scope: "read  write:all".into(),
            client_id: "default".into(),
            iat: 0,
            exp: 1,
            iss: "latchkey".into(),
            aud: "latchkey".into(),
        };
        assert!(claims.has_scope("read"));
        assert!(claims.has_scope("write:all"));
        assert!(!claims.has_scope("write"));
        assert!(!claims.has_scope(""));
    }

    #[test]
    fn statuses_carry_the_contract_reasons() {
        let stale = VerifyError::Stale.to_status();
        assert_eq!(stale.code(), Code::Unavailable);
        let info = stale.get_details_error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("REVOCATIONS_STALE", "latchkey")
        );
        for kind in [
            VerifyError::Malformed,
            VerifyError::Revoked,
            VerifyError::Expired,
        ] {
            let status = kind.to_status();
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(
                status.get_details_error_info().unwrap().reason,
                "ACCESS_TOKEN_INVALID"
            );
        }
    }
}
