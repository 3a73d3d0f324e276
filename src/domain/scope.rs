//! Scope grants (RFC 6749 §3.3): a client asks, the user's holdings decide.

/// The scope that lets a bearer act on other users (LogoutAll naming `user_id`).
pub const ADMIN_SCOPE: &str = "latchkey.admin";

/// What a login is granted: every scope the user holds when none is asked for, otherwise the asked
/// scopes that the user holds, in the order asked and without repeats.
pub fn grant(held: &[String], requested: &[String]) -> Vec<String> {
    if requested.is_empty() {
        return held.to_vec();
    }
    let mut granted: Vec<String> = Vec::new();
    for scope in requested {
        if held.contains(scope) && !granted.contains(scope) {
            granted.push(scope.clone());
        }
    }
    granted
}

/// Scopes as they travel in tokens and responses: space-separated.
pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

pub fn split(scope: &str) -> Vec<String> {
    scope.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_request_grants_everything_held() {
        assert_eq!(grant(&v(&["a", "b"]), &[]), v(&["a", "b"]));
    }

    #[test]
    fn scopes_not_held_are_left_out() {
        assert_eq!(grant(&v(&["a", "b"]), &v(&["b", "c", "b"])), v(&["b"]));
        assert!(grant(&v(&["a"]), &v(&["latchkey.admin"])).is_empty());
    }
}
