//! Revocations: what the feed carries (a session, an access token id, or a user's cutoff), and why
//! sessions were revoked. The store writes them, the revocation cache and WatchRevocations read them.

use super::UnixMs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationTarget {
    Session(String),
    Jti(String),
    User { user_id: String, not_before: UnixMs },
}

/// One entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub seq: i64,
    pub target: RevocationTarget,
    pub expires_at: UnixMs,
}

/// Why sessions were revoked: it names the account event written with the revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Revoke,
    Reuse,
    LogoutAll,
    PasswordChange,
    Disable,
    /// A login beyond the user's session cap revoked the least recently used session.
    Evicted,
    /// The user was deleted.
    Delete,
}
