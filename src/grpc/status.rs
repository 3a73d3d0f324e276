//! `ServiceError` → gRPC status, in one place: the code, a `google.rpc.ErrorInfo` with domain
//! `latchkey` and the reason from API.md, and a message for people. Internal causes (the error's
//! `source` chain) are logged here and never sent.

use std::collections::HashMap;

use tonic::{Code, Status, metadata::MetadataMap};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::error;

use crate::service::ServiceError;

pub const DOMAIN: &str = "latchkey";

/// The status code and `ErrorInfo` reason of an error.
pub fn classify(e: &ServiceError) -> (Code, &'static str) {
    use ServiceError as E;
    match e {
        E::InvalidArgument(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
        E::TokenMalformed => (Code::InvalidArgument, "TOKEN_MALFORMED"),
        E::InvalidCredentials => (Code::Unauthenticated, "INVALID_CREDENTIALS"),
        E::AccountDisabled => (Code::PermissionDenied, "ACCOUNT_DISABLED"),
        E::TooManyAttempts { .. } => (Code::ResourceExhausted, "TOO_MANY_ATTEMPTS"),
        E::RefreshTokenInvalid => (Code::Unauthenticated, "REFRESH_TOKEN_INVALID"),
        E::RefreshTokenExpired => (Code::Unauthenticated, "REFRESH_TOKEN_EXPIRED"),
        E::SessionExpired => (Code::Unauthenticated, "SESSION_EXPIRED"),
        E::RefreshTokenReused => (Code::Unauthenticated, "REFRESH_TOKEN_REUSED"),
        E::AccessTokenInvalid => (Code::Unauthenticated, "ACCESS_TOKEN_INVALID"),
        E::NotAllowed => (Code::PermissionDenied, "NOT_ALLOWED"),
        E::UserNotFound => (Code::NotFound, "USER_NOT_FOUND"),
        E::UsernameTaken => (Code::AlreadyExists, "USERNAME_TAKEN"),
        E::CallerNotAllowed(_) => (Code::PermissionDenied, "CALLER_NOT_ALLOWED"),
        E::Overloaded => (Code::ResourceExhausted, "OVERLOADED"),
        E::SubscriberTooSlow => (Code::Unavailable, "SUBSCRIBER_TOO_SLOW"),
        E::StoreUnavailable(_) => (Code::Unavailable, "STORE_UNAVAILABLE"),
        E::Internal(_) => (Code::Internal, "INTERNAL"),
    }
}

pub fn to_status(e: ServiceError) -> Status {
    let (code, reason) = classify(&e);
    let message = match &e {
        ServiceError::Internal(_) => {
            error!(cause = %e.chain(), "internal error");
            "internal error".to_owned()
        }
        ServiceError::StoreUnavailable(_) => {
            error!(cause = %e.chain(), "store unavailable");
            e.to_string()
        }
        _ => e.to_string(),
    };
    let details = ErrorDetails::with_error_info(reason, DOMAIN, HashMap::<String, String>::new());
    let mut metadata = MetadataMap::new();
    if let ServiceError::TooManyAttempts { retry_after_secs } = e
        && let Ok(value) = retry_after_secs.to_string().parse()
    {
        metadata.insert("retry-after", value);
    }
    Status::with_error_details_and_metadata(code, message, details, metadata)
}

/// A request message over the server's limit (see `too_large`), with the limit in the message.
pub fn request_too_large() -> Status {
    let details = ErrorDetails::with_error_info(
        "REQUEST_TOO_LARGE",
        DOMAIN,
        HashMap::<String, String>::new(),
    );
    let message = format!(
        "the request message is over the server's limit of {} bytes",
        super::MAX_REQUEST_BYTES
    );
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_never_reach_the_client() {
        let status = to_status(ServiceError::Internal(
            "SELECT * FROM users; disk on fire".into(),
        ));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("SELECT"));
        assert_eq!(status.get_details_error_info().unwrap().reason, "INTERNAL");
    }

    #[test]
    fn throttled_logins_say_when_to_come_back() {
        let status = to_status(ServiceError::TooManyAttempts {
            retry_after_secs: 30,
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "30");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("TOO_MANY_ATTEMPTS", "latchkey")
        );
    }
}
