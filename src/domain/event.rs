//! Account events: what happened to an account, for its user to see (ListActivity), for operators
//! (ListEvents) and for notification services (WatchEvents). The store writes each one in the
//! transaction of what it records; this says what they are.

use super::{UnixMs, revocation::Reason};

/// What happened. The names are the contract's (API.md); `as_str` is what the store and the wire
/// carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Login,
    /// A wrong password for a user that exists (unknown names leave no trace).
    LoginFailed,
    /// A failed login that locked the name.
    LockedOut,
    /// A session refreshed from an address it was not opened from.
    RefreshIpChanged,
    ReuseDetected,
    SessionRevoked,
    SessionEvicted,
    LogoutAll,
    PasswordChanged,
    ScopesChanged,
    Disabled,
    Enabled,
    UserCreated,
    UserDeleted,
}

impl EventKind {
    pub const ALL: [Self; 14] = [
        Self::Login,
        Self::LoginFailed,
        Self::LockedOut,
        Self::RefreshIpChanged,
        Self::ReuseDetected,
        Self::SessionRevoked,
        Self::SessionEvicted,
        Self::LogoutAll,
        Self::PasswordChanged,
        Self::ScopesChanged,
        Self::Disabled,
        Self::Enabled,
        Self::UserCreated,
        Self::UserDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::LockedOut => "locked_out",
            Self::RefreshIpChanged => "refresh_ip_changed",
            Self::ReuseDetected => "reuse_detected",
            Self::SessionRevoked => "session_revoked",
            Self::SessionEvicted => "session_evicted",
            Self::LogoutAll => "logout_all",
            Self::PasswordChanged => "password_changed",
            Self::ScopesChanged => "scopes_changed",
            Self::Disabled => "disabled",
            Self::Enabled => "enabled",
            Self::UserCreated => "user_created",
            Self::UserDeleted => "user_deleted",
        }
    }

    /// The kind named `name`; `None` for a name the contract does not list.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl From<Reason> for EventKind {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::Revoke => Self::SessionRevoked,
            Reason::Reuse => Self::ReuseDetected,
            Reason::LogoutAll => Self::LogoutAll,
            Reason::PasswordChange => Self::PasswordChanged,
            Reason::Disable => Self::Disabled,
            Reason::Evicted => Self::SessionEvicted,
            Reason::Delete => Self::UserDeleted,
        }
    }
}

/// Where a call came from and what it was about: the columns an event shares with the request
/// that caused it. Empty strings where there is nothing to say (the CLI has no address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: String,
    pub device: String,
    pub client_id: String,
    pub session_id: String,
}

/// An event to record, before the store numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub user_id: String,
    pub kind: EventKind,
    pub origin: Origin,
    pub detail: String,
    /// For a login: whether its device or address appeared in the user's logins since then decides
    /// `new_device` (computed by the store, in the login's transaction).
    pub new_device_since: Option<UnixMs>,
}

impl NewEvent {
    pub fn new(user_id: &str, kind: EventKind, origin: Origin) -> Self {
        Self {
            user_id: user_id.to_owned(),
            kind,
            origin,
            detail: String::new(),
            new_device_since: None,
        }
    }

    pub fn with_detail(self, detail: String) -> Self {
        Self { detail, ..self }
    }
}

/// An event as recorded: numbered in commit order (`seq`), so that a reader resuming after the
/// last one it saw misses none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub seq: i64,
    pub at: UnixMs,
    pub user_id: String,
    pub kind: String,
    pub session_id: String,
    pub ip: String,
    pub device: String,
    pub client_id: String,
    pub new_device: bool,
    pub detail: String,
}

/// How far back a login's device and address count as known.
pub const KNOWN_DEVICE_WINDOW: UnixMs = 90 * 24 * 3_600_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name_and_nothing_else_does() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("Login"), None);
        assert_eq!(EventKind::parse(""), None);
    }
}
