//! The one rule for bearer tokens, shared by AuthService and ext_authz: `authorization: Bearer
//! <token>` (scheme case-insensitive, surrounding spaces ignored). A missing, empty or oversized
//! token authenticates nobody.

use crate::domain::types::MAX_TOKEN_BYTES;

/// The token of an `authorization` header value, if it carries one that can be checked.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    let usable = !token.is_empty() && token.len() <= MAX_TOKEN_BYTES;
    (scheme.eq_ignore_ascii_case("bearer") && usable).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_read_whatever_the_scheme_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
    }

    #[test]
    fn missing_empty_or_oversized_tokens_authenticate_nobody() {
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer    "), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer(""), None);
        let oversized = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer(&oversized), None);
        let largest = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES));
        assert!(bearer(&largest).is_some());
    }
}
