//! Who is calling, as the transport tells it: the connection's peer address and, under mTLS, the
//! identity its client certificate names (first URI SAN, else first DNS SAN, else subject CN). And
//! the lists of identities allowed to make the calls that only services should make
//! (`LATCHKEY_SERVICE_CALLERS`, `LATCHKEY_ADMIN_CALLERS`).

use std::{collections::HashSet, fmt, net::SocketAddr, sync::Arc};

/// Longest identity taken from a certificate, and longest list entry. A SPIFFE ID is at most
/// 2,048 bytes; a longer name is no identity at all (it is never on a list).
pub const MAX_IDENTITY_BYTES: usize = 2048;

/// A client certificate's identity, such as `spiffe://prod/ns/payments/sa/api`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallerIdentity(Arc<str>);

impl CallerIdentity {
    /// `None` for a name that is empty, too long, or holds control characters (it would be
    /// unreadable in a message or a log).
    pub fn new(name: &str) -> Option<Self> {
        let plausible = !name.is_empty()
            && name.len() <= MAX_IDENTITY_BYTES
            && !name.chars().any(char::is_control);
        plausible.then(|| Self(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The far end of a connection, fixed when it was accepted (and its TLS handshake done).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub addr: Option<SocketAddr>,
    /// From the client certificate; `None` without mTLS, or for a certificate that names nobody.
    pub identity: Option<CallerIdentity>,
}

/// Identities allowed to make a kind of call. Entries are exact identities, or a prefix ending in
/// `/*`, which matches every identity under that path: `spiffe://prod/ns/a/*` matches
/// `spiffe://prod/ns/a/sa/x` but neither `spiffe://prod/ns/ab/sa/x` nor `spiffe://prod/ns/a`.
/// An empty list lets everyone through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerList {
    exact: HashSet<String>,
    /// Each with its trailing `/` kept, without the `*`.
    prefixes: Vec<String>,
}

impl CallerList {
    /// A comma-separated list; blanks around entries are ignored. Refuses an entry with a `*`
    /// anywhere but in a trailing `/*`, or one that could never match a certificate's identity.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut list = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, prefix) = match entry.strip_suffix('*') {
                Some(path) if path.ends_with('/') => (path, true),
                _ => (entry, false),
            };
            if name.contains('*') {
                return Err(format!(
                    "{entry:?}: `*` is allowed only as a trailing `/*` (every identity under a path)"
                ));
            }
            if name.chars().any(char::is_whitespace) || CallerIdentity::new(name).is_none() {
                return Err(format!(
                    "{entry:?} is not an identity: at most {MAX_IDENTITY_BYTES} bytes, no spaces or control characters"
                ));
            }
            if prefix {
                list.prefixes.push(name.to_owned());
            } else {
                list.exact.insert(name.to_owned());
            }
        }
        Ok(list)
    }

    /// Whether the list is empty, letting everyone through.
    pub fn is_open(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// Whether a caller with this identity (or none) may make the call.
    pub fn allows(&self, identity: Option<&CallerIdentity>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(identity) = identity.map(CallerIdentity::as_str) else {
            return false;
        };
        self.exact.contains(identity)
            || self
                .prefixes
                .iter()
                .any(|prefix| identity.len() > prefix.len() && identity.starts_with(prefix))
    }
}

/// The caller lists of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Callers {
    /// Introspect, WatchRevocations and ext_authz `Check`.
    pub service: CallerList,
    /// The AdminService (issue 10), besides admin bearer tokens: parsed and checked now so that a
    /// deployment's settings need not change when it arrives.
    pub admin: CallerList,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> CallerIdentity {
        CallerIdentity::new(name).unwrap()
    }

    fn allows(list: &str, name: &str) -> bool {
        CallerList::parse(list).unwrap().allows(Some(&id(name)))
    }

    #[test]
    fn an_empty_list_lets_everyone_through_even_without_a_certificate() {
        for text in ["", " ", ",", " , "] {
            let list = CallerList::parse(text).unwrap();
            assert!(list.is_open(), "{text:?}");
            assert!(list.allows(None));
            assert!(list.allows(Some(&id("spiffe://any/thing"))));
        }
    }

    #[test]
    fn entries_match_exactly() {
        let list = "spiffe://prod/ns/a/sa/api, gateway.internal";
        assert!(allows(list, "spiffe://prod/ns/a/sa/api"));
        assert!(allows(list, "gateway.internal"));
        assert!(!allows(list, "spiffe://prod/ns/a/sa/api2"));
        assert!(!allows(list, "spiffe://prod/ns/a/sa"));
        assert!(!allows(list, "Gateway.internal"));
        assert!(!CallerList::parse(list).unwrap().allows(None));
    }

    #[test]
    fn a_trailing_slash_star_matches_what_is_under_the_path_only() {
        let list = "spiffe://prod/ns/a/*";
        assert!(allows(list, "spiffe://prod/ns/a/sa/x"));
        assert!(allows(list, "spiffe://prod/ns/a/x"));
        assert!(!allows(list, "spiffe://prod/ns/ab/sa/x"));
        assert!(!allows(list, "spiffe://prod/ns/a/"));
        assert!(!allows(list, "spiffe://prod/ns/a"));
        assert!(!allows(list, "spiffe://prod/ns/b/sa/x"));
    }

    #[test]
    fn a_star_anywhere_else_or_a_non_identity_is_refused() {
        for bad in [
            "*",
            "spiffe://prod/*/sa/x",
            "spiffe://prod/ns/a*",
            "a b",
            "tab\there",
        ] {
            let refused = CallerList::parse(bad).unwrap_err();
            assert!(refused.contains(&format!("{bad:?}")), "{refused}");
        }
        let long = "x".repeat(MAX_IDENTITY_BYTES + 1);
        assert!(CallerList::parse(&long).is_err());
    }

    #[test]
    fn identities_are_plausible_names() {
        assert!(CallerIdentity::new("").is_none());
        assert!(CallerIdentity::new("a\nb").is_none());
        assert!(CallerIdentity::new(&"x".repeat(MAX_IDENTITY_BYTES + 1)).is_none());
        assert_eq!(id("svc").to_string(), "svc");
    }
}
