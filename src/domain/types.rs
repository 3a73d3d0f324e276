//! Validated values: raw strings from the wire become these at the edge, so the rest of the code
//! never handles an unchecked one.

use zeroize::Zeroizing;

use super::secret::Secret;

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
    #[error("{0} is not valid")]
    Invalid(&'static str),
    #[error("{0:?} is not a scope: scopes are single words")]
    BadScope(String),
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// A password as given: at most 1,024 bytes. Never printed, and wiped from memory when dropped.
#[derive(Debug)]
pub struct Password(Secret<Zeroizing<String>>);

impl Password {
    pub fn parse(raw: String) -> Result<Self, InputError> {
        // Wrapped first, so that a refused password is wiped too.
        let raw = Zeroizing::new(raw);
        if raw.is_empty() {
            return Err(InputError::Missing("password"));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(InputError::TooLong("password"));
        }
        Ok(Self(Secret::new(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose().as_str()
    }
}

/// The client a session is for: at most 256 bytes, no control characters; empty means `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: String) -> Result<Self, InputError> {
        let id = bounded_text("client_id", raw, MAX_CLIENT_ID_BYTES)?;
        Ok(Self(if id.is_empty() {
            "default".to_owned()
        } else {
            id
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A device name for a session: at most 256 bytes, no control characters; may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device(String);

impl Device {
    pub fn parse(raw: String) -> Result<Self, InputError> {
        bounded_text("device", raw, MAX_DEVICE_BYTES).map(Self)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A scope a user may hold: one word, without whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(String);

impl Scope {
    pub fn parse(raw: String) -> Result<Self, InputError> {
        if raw.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InputError::BadScope(raw));
        }
        Ok(Self(raw))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

fn bounded_text(what: &'static str, raw: String, max: usize) -> Result<String, InputError> {
    if raw.len() > max {
        return Err(InputError::TooLong(what));
    }
    if raw.chars().any(char::is_control) {
        return Err(InputError::ControlCharacters(what));
    }
    Ok(raw)
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
        assert_eq!(p.expose(), "hunter2");
    }

    #[test]
    fn an_empty_client_id_is_default() {
        assert_eq!(ClientId::parse(String::new()).unwrap().as_str(), "default");
        assert_eq!(
            ClientId::parse("billing".into()).unwrap().as_str(),
            "billing"
        );
        assert!(Device::parse("d".repeat(257)).is_err());
        assert!(Device::parse(String::new()).is_ok());
    }

    #[test]
    fn scopes_are_single_words() {
        assert!(Scope::parse("read".into()).is_ok());
        for bad in ["", "read write", "tab\there"] {
            assert_eq!(
                Scope::parse(bad.into()),
                Err(InputError::BadScope(bad.into()))
            );
        }
    }
}
