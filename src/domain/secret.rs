//! `Secret<T>`: a value that must never reach a log. Its `Debug` prints `<redacted>`, so a struct
//! holding passwords, tokens, hashes or keys can derive `Debug` and stay safe to log; the value is
//! read only through [`Secret::expose`], which makes every use of it visible in review.

use std::fmt;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// So that a secret setting can be written as a literal (`Some("…".into())`).
impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        #[derive(Debug)]
        struct Login {
            #[allow(dead_code)] // read through Debug only
            password: Secret<String>,
        }
        let shown = format!(
            "{:?}",
            Login {
                password: Secret::new("hunter2".into())
            }
        );
        assert_eq!(shown, "Login { password: <redacted> }");
    }
}
