//! `ServiceError`: the one error of the service layer. Each variant is something a client can act
//! on; the gRPC edge (`grpc::status`) maps each to a status and an `ErrorInfo` reason. Internal
//! causes are kept whole, as `source`, for the logs: they never reach a client.

use std::{error::Error, fmt};

use crate::{
    crypto::{CryptoError, password::HashError},
    domain::{caller::CallerIdentity, token::MalformedToken, types::InputError},
    store::StoreError,
};

/// What went wrong underneath an internal failure or an unavailable store.
pub type Cause = Box<dyn Error + Send + Sync>;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    InvalidArgument(#[from] InputError),
    #[error("the token is malformed")]
    TokenMalformed,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("the refresh token is not valid")]
    RefreshTokenInvalid,
    #[error("the refresh token has expired")]
    RefreshTokenExpired,
    #[error("the session has expired")]
    SessionExpired,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("a valid bearer access token is required")]
    AccessTokenInvalid,
    #[error("not allowed")]
    NotAllowed,
    #[error("no such user")]
    UserNotFound,
    #[error("a user of that name already exists")]
    UsernameTaken,
    /// The client certificate's identity (if any) is not on the list of callers for this call.
    #[error("{}", caller_not_allowed(.0.as_ref()))]
    CallerNotAllowed(Option<CallerIdentity>),
    #[error("the server is busy; try again later")]
    Overloaded,
    /// A WatchRevocations reader left its stream's buffer full for too long.
    #[error("the revocation stream was not read fast enough; resume after the last seq received")]
    SubscriberTooSlow,
    #[error("the token store is unavailable; try again")]
    StoreUnavailable(#[source] Cause),
    #[error("internal error")]
    Internal(#[source] Cause),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Names the caller's own identity (from its certificate), which tells its operator what to add to
/// the list; nothing about the list itself.
fn caller_not_allowed(identity: Option<&CallerIdentity>) -> String {
    match identity {
        Some(identity) => {
            format!("the client certificate's identity \"{identity}\" may not make this call")
        }
        None => "this call needs a client certificate whose identity may make it".to_owned(),
    }
}

impl ServiceError {
    /// An internal failure described in words (a broken invariant rather than a failed call).
    pub fn internal(what: impl Into<String>) -> Self {
        Self::Internal(what.into().into())
    }
}

/// For `map_err` on a lock of the service's memory (`what`: the cache or log it guards): a
/// poisoned lock means a thread panicked while holding it.
pub(super) fn poisoned<T>(what: &'static str) -> impl Fn(T) -> ServiceError {
    move |_| ServiceError::internal(format!("{what} lock poisoned"))
}

impl ServiceError {
    /// The error with every cause under it, for logs: `internal error: a: b`.
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }
}

/// See [`ServiceError::chain`].
pub struct Chain<'a>(&'a ServiceError);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl From<MalformedToken> for ServiceError {
    fn from(_: MalformedToken) -> Self {
        Self::TokenMalformed
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        if matches!(e, StoreError::Unavailable(..)) {
            Self::StoreUnavailable(Box::new(e))
        } else {
            Self::Internal(Box::new(e))
        }
    }
}

impl From<CryptoError> for ServiceError {
    fn from(e: CryptoError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Overloaded => Self::Overloaded,
            internal => Self::Internal(Box::new(internal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_every_cause() {
        let e = ServiceError::from(CryptoError("disk on fire".into()));
        assert_eq!(
            e.chain().to_string(),
            "internal error: cryptographic operation failed: disk on fire"
        );
        assert_eq!(e.to_string(), "internal error");
    }
}
