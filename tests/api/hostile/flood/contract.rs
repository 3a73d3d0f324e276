//! What the contract (docs/API.md) lets each method answer, and the judge of one answer.
//!
//! A failure must carry a `google.rpc.ErrorInfo` with domain `latchkey`, a reason the method may
//! give, and that reason's status code; any method may answer a body over the 64 KiB request limit
//! with `RESOURCE_EXHAUSTED` / `REQUEST_TOO_LARGE` (API.md's Limits). Without `ErrorInfo`, only what tonic itself answers before
//! latchkey's code runs is allowed, each exactly where it can happen:
//!
//! - `INTERNAL` "failed to decode Protobuf message: …", for a body that is not the request message.
//!   That is tonic-prost's codec (its `from_decode_error`), following gRPC's status-code guide
//!   ("Error parsing request proto: INTERNAL"); the body is decoded here too, so latchkey never
//!   gets an `INTERNAL` past a message that decodes.
//! - `NOT_FOUND` from Health `Check` for a service name other than `""`, AuthService and
//!   AdminService.
//!
//! Never `UNKNOWN`, `CANCELLED`, `DEADLINE_EXCEEDED` or a transport error.

use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use latchkey::grpc::pb;
use prost::Message;
use tonic::{Code, Status};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_types::StatusExt;

use super::accounts::Account;

/// Every method the flood calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Login,
    Refresh,
    Revoke,
    Introspect,
    LogoutAll,
    ListSessions,
    GetJwks,
    WatchRevocations,
    HealthCheck,
    ExtAuthzCheck,
    /// AdminService, ListActivity and ChangePassword (see `accounts`).
    Account(Account),
}

/// The request limit of AuthService and ext_authz.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The health service names latchkey serves.
const HEALTH_NAMES: [&str; 3] = ["", "latchkey.v1.AuthService", "latchkey.v1.AdminService"];

/// API.md's Errors table: each reason and its status.
const REASONS: [(&str, Code); 16] = [
    ("INVALID_ARGUMENT", Code::InvalidArgument),
    ("TOKEN_MALFORMED", Code::InvalidArgument),
    ("INVALID_CREDENTIALS", Code::Unauthenticated),
    ("ACCOUNT_DISABLED", Code::PermissionDenied),
    ("TOO_MANY_ATTEMPTS", Code::ResourceExhausted),
    ("REFRESH_TOKEN_INVALID", Code::Unauthenticated),
    ("REFRESH_TOKEN_EXPIRED", Code::Unauthenticated),
    ("SESSION_EXPIRED", Code::Unauthenticated),
    ("REFRESH_TOKEN_REUSED", Code::Unauthenticated),
    ("ACCESS_TOKEN_INVALID", Code::Unauthenticated),
    ("NOT_ALLOWED", Code::PermissionDenied),
    ("OVERLOADED", Code::ResourceExhausted),
    ("STORE_UNAVAILABLE", Code::Unavailable),
    ("INTERNAL", Code::Internal),
    ("USERNAME_TAKEN", Code::AlreadyExists),
    ("USER_NOT_FOUND", Code::NotFound),
];

impl Method {
    pub fn all() -> Vec<Method> {
        let mut all = vec![
            Method::Login,
            Method::Refresh,
            Method::Revoke,
            Method::Introspect,
            Method::LogoutAll,
            Method::ListSessions,
            Method::GetJwks,
            Method::WatchRevocations,
            Method::HealthCheck,
            Method::ExtAuthzCheck,
        ];
        all.extend(Account::ALL.map(Method::Account));
        all
    }

    /// Whether the call answers with a stream.
    pub fn streams(self) -> bool {
        matches!(
            self,
            Method::WatchRevocations | Method::Account(Account::WatchEvents)
        )
    }

    pub fn path(self) -> &'static str {
        match self {
            Method::Login => "/latchkey.v1.AuthService/Login",
            Method::Refresh => "/latchkey.v1.AuthService/Refresh",
            Method::Revoke => "/latchkey.v1.AuthService/Revoke",
            Method::Introspect => "/latchkey.v1.AuthService/Introspect",
            Method::LogoutAll => "/latchkey.v1.AuthService/LogoutAll",
            Method::ListSessions => "/latchkey.v1.AuthService/ListSessions",
            Method::GetJwks => "/latchkey.v1.AuthService/GetJwks",
            Method::WatchRevocations => "/latchkey.v1.AuthService/WatchRevocations",
            Method::HealthCheck => "/grpc.health.v1.Health/Check",
            Method::ExtAuthzCheck => "/envoy.service.auth.v3.Authorization/Check",
            Method::Account(call) => call.path(),
        }
    }

    /// The reasons the method may fail with (API.md, per RPC). `INTERNAL` is in none: a fault
    /// inside latchkey is what the flood looks for.
    fn reasons(self) -> &'static [&'static str] {
        const STORE: &str = "STORE_UNAVAILABLE";
        match self {
            Method::Login => &[
                "INVALID_ARGUMENT",
                "INVALID_CREDENTIALS",
                "ACCOUNT_DISABLED",
                "TOO_MANY_ATTEMPTS",
                "OVERLOADED",
                STORE,
            ],
            Method::Refresh => &[
                "TOKEN_MALFORMED",
                "REFRESH_TOKEN_INVALID",
                "REFRESH_TOKEN_EXPIRED",
                "SESSION_EXPIRED",
                "REFRESH_TOKEN_REUSED",
                STORE,
            ],
            Method::Revoke => &["INVALID_ARGUMENT", "TOKEN_MALFORMED", STORE],
            Method::Introspect => &["TOKEN_MALFORMED", STORE],
            Method::LogoutAll => &["ACCESS_TOKEN_INVALID", "NOT_ALLOWED", STORE],
            Method::ListSessions => &["ACCESS_TOKEN_INVALID", STORE],
            Method::GetJwks => &[STORE],
            Method::WatchRevocations => &["INVALID_ARGUMENT", STORE],
            Method::HealthCheck | Method::ExtAuthzCheck => &[],
            Method::Account(call) => call.reasons(),
        }
    }

    /// Whether `body` decodes as the method's request, as tonic decodes it.
    fn decodes(self, body: &[u8]) -> bool {
        match self {
            Method::Login => pb::LoginRequest::decode(body).is_ok(),
            Method::Refresh => pb::RefreshRequest::decode(body).is_ok(),
            Method::Revoke => pb::RevokeRequest::decode(body).is_ok(),
            Method::Introspect => pb::IntrospectRequest::decode(body).is_ok(),
            Method::LogoutAll => pb::LogoutAllRequest::decode(body).is_ok(),
            Method::ListSessions => pb::ListSessionsRequest::decode(body).is_ok(),
            Method::GetJwks => pb::GetJwksRequest::decode(body).is_ok(),
            Method::WatchRevocations => pb::WatchRevocationsRequest::decode(body).is_ok(),
            Method::HealthCheck => HealthCheckRequest::decode(body).is_ok(),
            Method::ExtAuthzCheck => CheckRequest::decode(body).is_ok(),
            Method::Account(call) => call.decodes(body),
        }
    }

    /// Whether an OK answer is the method's response, with what the contract says of it.
    fn answer_fits(self, answer: &[u8]) -> Result<(), String> {
        let fits = match self {
            Method::Login | Method::Refresh => pb::TokenResponse::decode(answer)
                .is_ok_and(|t| t.token_type == "Bearer" && t.refresh_token.len() == 49),
            Method::Revoke => pb::RevokeResponse::decode(answer).is_ok(),
            // Anything not active answers `active = false` and no other field.
            Method::Introspect => pb::IntrospectResponse::decode(answer)
                .is_ok_and(|i| i.active || i == pb::IntrospectResponse::default()),
            Method::LogoutAll => pb::LogoutAllResponse::decode(answer).is_ok(),
            Method::ListSessions => pb::ListSessionsResponse::decode(answer).is_ok(),
            Method::GetJwks => pb::GetJwksResponse::decode(answer)
                .is_ok_and(|j| serde_json::from_str::<serde_json::Value>(&j.jwks_json).is_ok()),
            Method::WatchRevocations => pb::RevocationEvent::decode(answer).is_ok(),
            Method::HealthCheck => HealthCheckResponse::decode(answer).is_ok(),
            // Let through (OK) or denied (UNAUTHENTICATED, HTTP 401), never anything else.
            Method::ExtAuthzCheck => CheckResponse::decode(answer)
                .is_ok_and(|c| matches!(c.status.map_or(0, |s| s.code), 0 | 16)),
            Method::Account(call) => call.answer_fits(answer),
        };
        fits.then_some(())
            .ok_or_else(|| format!("an OK answer that is not what {self:?} answers: {answer:02x?}"))
    }
}

/// How one call went.
#[derive(Debug)]
pub enum Outcome {
    /// A unary answer, OK.
    Answered(Vec<u8>),
    /// A stream opened: its first message, or none within the wait.
    Opened(Option<Vec<u8>>),
    /// A stream opened and ended at once with OK: the feed's task is gone.
    Ended,
    Failed(Status),
    /// No answer within the deadline.
    Hung,
}

/// Whether `outcome` is one the contract allows `method` for `body`.
pub fn judge(method: Method, body: &[u8], outcome: &Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Answered(answer) | Outcome::Opened(Some(answer)) => method.answer_fits(answer),
        Outcome::Opened(None) => Ok(()),
        Outcome::Ended => Err("the stream ended at once, with OK: did its task panic?".into()),
        Outcome::Failed(status) => failure_fits(method, body, status),
        Outcome::Hung => Err("no answer within the deadline".into()),
    }
}

fn failure_fits(method: Method, body: &[u8], status: &Status) -> Result<(), String> {
    let code = status.code();
    if let Some(info) = status.get_details_error_info() {
        let too_large = info.reason == "REQUEST_TOO_LARGE"
            && code == Code::ResourceExhausted
            && body.len() > MAX_REQUEST_BYTES;
        if too_large && info.domain == "latchkey" {
            return Ok(());
        }
        let allowed = method.reasons().contains(&info.reason.as_str());
        let its_code = REASONS.iter().any(|(r, c)| *r == info.reason && *c == code);
        if allowed && its_code && info.domain == "latchkey" {
            return Ok(());
        }
        return Err(format!(
            "{code:?} / {} (domain {:?}) is not in {method:?}'s contract: {:?}",
            info.reason,
            info.domain,
            status.message()
        ));
    }
    let tonics_own = match code {
        Code::Internal => {
            status
                .message()
                .starts_with("failed to decode Protobuf message")
                && !method.decodes(body)
        }
        Code::NotFound => {
            method == Method::HealthCheck
                && HealthCheckRequest::decode(body)
                    .is_ok_and(|r| !HEALTH_NAMES.contains(&r.service.as_str()))
        }
        _ => false,
    };
    if tonics_own {
        Ok(())
    } else {
        Err(format!("{code:?} without ErrorInfo: {status:?}"))
    }
}
