//! Scope grants (RFC 6749 §3.3): a client asks, the user's holdings decide.

/// The scope that lets a bearer act on other users (LogoutAll naming `user_id`).
pub const ADMIN_SCOPE: &str = "latchkey.admin";

/// What a login is granted: every scope the user holds when none is asked for, except
/// [`ADMIN_SCOPE`], which is granted only when asked for by name (so that an everyday login never
/// carries the power to act on other users); otherwise the asked scopes that the user holds, in the
/// order asked and without repeats.
pub fn grant(held: &[String], requested: &[String]) -> Vec<String> {
    if requested.is_empty() {
        return held.iter().filter(|s| *s != ADMIN_SCOPE).cloned().collect();
    }
    let mut granted: Vec<String> = Vec::new();
    for scope in requested {
        if held.contains(scope) && !granted.contains(scope) {
            granted.push(scope.clone());
        }
    }
    granted
}

/// What a session's grant (space-separated) still carries once its user holds only `held`: a
/// refresh never grants a scope the user no longer holds (a scope removed by an admin drops out of
/// the session's next token).
pub fn narrow(granted: &str, held: &[String]) -> String {
    let kept: Vec<&str> = granted
        .split_whitespace()
        .filter(|s| held.iter().any(|h| h == s))
        .collect();
    kept.join(" ")
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
    fn admin_is_granted_only_when_asked_for_by_name() {
        let held = v(&["a", ADMIN_SCOPE, "b"]);
        assert_eq!(grant(&held, &[]), v(&["a", "b"]));
        assert_eq!(grant(&held, &v(&[ADMIN_SCOPE])), v(&[ADMIN_SCOPE]));
        assert_eq!(
            grant(&held, &v(&["b", ADMIN_SCOPE])),
            v(&["b", ADMIN_SCOPE])
        );
    }

    #[test]
    fn scopes_not_held_are_left_out() {
        assert_eq!(grant(&v(&["a", "b"]), &v(&["b", "c", "b"])), v(&["b"]));
        assert!(grant(&v(&["a"]), &v(&["latchkey.admin"])).is_empty());
    }

    #[test]
    fn narrowing_keeps_only_what_the_user_still_holds_and_never_adds() {
        assert_eq!(
            narrow(
                "read write latchkey.admin",
                &v(&["write", "latchkey.admin"])
            ),
            "write latchkey.admin"
        );
        assert_eq!(narrow("read", &v(&[])), "");
        assert_eq!(narrow("", &v(&["read", "write"])), "");
    }
}
