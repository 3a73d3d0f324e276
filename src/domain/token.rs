//! The refresh-token format, and telling presented tokens apart by their form. A refresh token is
//! `lk_rt_` followed by 43 base64url characters (256 random bits); the prefix lets secret scanners
//! spot a leaked one. Drawing the random bits and hashing a token are `crypto`'s: this module only
//! knows the shape, so the edges can parse tokens without touching anything secret-making.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{secret::Secret, types::MAX_TOKEN_BYTES};

const PREFIX: &str = "lk_rt_";
/// The random bits of a refresh token, in bytes.
pub const RANDOM_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;

/// A token that is too long, or not of the form its call requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the token is malformed")]
pub struct MalformedToken;

/// A well-formed refresh token. `Debug` never shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken(Secret<String>);

impl RefreshToken {
    /// The token carrying `random`.
    pub fn encode(random: &[u8; RANDOM_BYTES]) -> Self {
        Self(Secret::new(format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(random)
        )))
    }

    /// Accepts only the exact form, so garbage never reaches the database.
    pub fn parse(raw: String) -> Result<Self, MalformedToken> {
        if well_formed(&raw) {
            Ok(Self(Secret::new(raw)))
        } else {
            Err(MalformedToken)
        }
    }

    /// A token read back from its sealed bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, MalformedToken> {
        Self::parse(String::from_utf8(bytes).map_err(|_| MalformedToken)?)
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn into_secret(self) -> Secret<String> {
        self.0
    }
}

/// The exact form: the prefix, then 43 base64url characters that decode to 32 bytes. The length is
/// checked before decoding, so an oversized token costs nothing.
fn well_formed(raw: &str) -> bool {
    raw.strip_prefix(PREFIX)
        .filter(|body| body.len() == ENCODED_LEN)
        .and_then(|body| URL_SAFE_NO_PAD.decode(body).ok())
        .is_some_and(|decoded| decoded.len() == RANDOM_BYTES)
}

/// A token presented to Introspect or Revoke, which take either kind.
#[derive(Debug)]
pub enum PresentedToken<'a> {
    Refresh(RefreshToken),
    /// Of the refresh form's prefix but not its shape: names nothing.
    Unrecognised,
    /// Anything else: an access token if it verifies. Borrowed: checking one allocates nothing.
    Access(Secret<&'a str>),
}

impl<'a> PresentedToken<'a> {
    /// Tells the kinds apart; refuses only a token past the size limit.
    pub fn parse(raw: &'a str) -> Result<Self, MalformedToken> {
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(MalformedToken);
        }
        Ok(if well_formed(raw) {
            Self::Refresh(RefreshToken(Secret::new(raw.to_owned())))
        } else if raw.starts_with(PREFIX) {
            Self::Unrecognised
        } else {
            Self::Access(Secret::new(raw))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(fill: u8) -> RefreshToken {
        RefreshToken::encode(&[fill; RANDOM_BYTES])
    }

    #[test]
    fn encoded_tokens_parse_back_and_never_print() {
        let a = token(7);
        assert!(a.expose().starts_with("lk_rt_"));
        assert_eq!(a.expose().len(), 6 + 43);
        assert_eq!(RefreshToken::parse(a.expose().to_owned()), Ok(a.clone()));
        assert_eq!(
            RefreshToken::from_bytes(a.expose().as_bytes().to_vec()),
            Ok(a.clone())
        );
        assert!(!format!("{a:?}").contains(&a.expose()[6..]));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = token(9);
        for bad in [
            "",
            "lk_rt_",
            "lk_rt_short",
            &good.expose()[6..],
            &format!("{}A", good.expose()),
            &format!("lk_at_{}", &good.expose()[6..]),
            &format!("{}!", &good.expose()[..48]),
            "eyJhbGciOiJFZERTQSJ9.e30.sig",
        ] {
            assert_eq!(
                RefreshToken::parse(bad.to_owned()),
                Err(MalformedToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn presented_tokens_are_told_apart_by_form() {
        let good = token(1);
        assert!(matches!(
            PresentedToken::parse(good.expose()),
            Ok(PresentedToken::Refresh(t)) if t == good
        ));
        assert!(matches!(
            PresentedToken::parse("lk_rt_short"),
            Ok(PresentedToken::Unrecognised)
        ));
        assert!(matches!(
            PresentedToken::parse("eyJ.e30.sig"),
            Ok(PresentedToken::Access(_))
        ));
        assert!(matches!(
            PresentedToken::parse(""),
            Ok(PresentedToken::Access(_))
        ));
        let oversized = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            PresentedToken::parse(&oversized).map(|_| ()),
            Err(MalformedToken)
        );
    }
}
