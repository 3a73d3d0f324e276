//! Validated values: raw strings from the wire become these at the edge, so the rest of the code
//! never handles an unchecked one.

use std::fmt;

/// Why an input was refused before any work was done.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{0} is too long")]
    TooLong(&'static str),
    #[error("{0} contains control characters")]
    ControlCharacters(&'static str),
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
}

/// SHA-256 of a refresh token: how the store finds it (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub Vec<u8>);

/// Largest token accepted anywhere (API.md: 8 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
const MAX_USERNAME_BYTES: usize = 256;
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_DEVICE_BYTES: usize = 256;
const MAX_CLIENT_ID_BYTES: usize = 256;

/// A login name: 1–256 bytes of UTF-8 without control characters, compared exactly as given.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        if raw.is_empty() {
            return Err(InputError::Missing("username"));
        }
        if raw.len() > MAX_USERNAME_BYTES {
            return Err(InputError::TooLong("username"));
        }
        if raw.chars().any(char::is_control) {
            return Err(InputError::ControlCharacters("username"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Username").field(&self.0).finish()
    }
}

/// A password as given: at most 1,024 bytes. `Debug` never shows it.
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, InputError> {
        if raw.is_empty() {
            return Err(InputError::Missing("password"));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(InputError::TooLong("password"));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A device name for a session: at most 256 bytes, no control characters; may be empty.
pub fn parse_device(raw: &str) -> Result<String, InputError> {
    bounded_text("device", raw, MAX_DEVICE_BYTES)
}

/// The client a session is for; empty means `default`.
pub fn parse_client_id(raw: &str) -> Result<String, InputError> {
    let id = bounded_text("client_id", raw, MAX_CLIENT_ID_BYTES)?;
    Ok(if id.is_empty() {
        "default".to_owned()
    } else {
        id
    })
}

fn bounded_text(what: &'static str, raw: &str, max: usize) -> Result<String, InputError> {
    if raw.len() > max {
        return Err(InputError::TooLong(what));
    }
    if raw.chars().any(char::is_control) {
        return Err(InputError::ControlCharacters(what));
    }
    Ok(raw.to_owned())
}

/// Refuses a token past the size limit; an empty one is refused where the call requires one.
pub fn check_token_size(token: &str) -> Result<(), InputError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(InputError::TooLong("token"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked_for_length_and_control_characters() {
        assert_eq!(Username::parse(""), Err(InputError::Missing("username")));
        assert!(Username::parse(&"a".repeat(256)).is_ok());
        assert_eq!(
            Username::parse(&"a".repeat(257)),
            Err(InputError::TooLong("username"))
        );
        assert_eq!(
            Username::parse("al\nice"),
            Err(InputError::ControlCharacters("username"))
        );
        assert_eq!(Username::parse("Élodie").unwrap().as_str(), "Élodie");
    }

    #[test]
    fn passwords_are_bounded_and_never_printed() {
        assert!(Password::parse("x".repeat(1024)).is_ok());
        assert_eq!(
            Password::parse("x".repeat(1025)).unwrap_err(),
            InputError::TooLong("password")
        );
        let p = Password::parse("hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn an_empty_client_id_is_default() {
        assert_eq!(parse_client_id("").unwrap(), "default");
        assert_eq!(parse_client_id("billing").unwrap(), "billing");
        assert!(parse_device(&"d".repeat(257)).is_err());
    }
}
