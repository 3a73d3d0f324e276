//! Paginated listings: page sizes, the opaque page tokens that carry a listing's position, and the
//! range of names a username prefix covers. Positions are keys (a name, an event number), never
//! offsets, so that a listing neither repeats nor skips an entry while others are inserted.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::types::InputError;

/// Entries per page when the request says 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The most a page holds, whatever the request says.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// How many entries a page holds: 0 asks for the default; more than the maximum is refused.
pub fn page_size(requested: u32) -> Result<i64, InputError> {
    match requested {
        0 => Ok(i64::from(DEFAULT_PAGE_SIZE)),
        n if n <= MAX_PAGE_SIZE => Ok(i64::from(n)),
        _ => Err(InputError::OutOfRange("page_size")),
    }
}

/// Where the next page of a listing starts: after this username, or below this event number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageToken {
    /// The first page.
    Start,
    AfterUsername(String),
    BeforeSeq(i64),
}

const USER_TAG: u8 = b'u';
const EVENT_TAG: u8 = b'e';
/// Longest token accepted: a tag and a username of at most 256 bytes, in base64.
const MAX_TOKEN_CHARS: usize = 400;

impl PageToken {
    /// Parses a token of a listing of `kind` (a token of another listing is refused, not
    /// reinterpreted). An empty token is the first page.
    pub fn parse(raw: &str, kind: PageKind) -> Result<Self, InputError> {
        if raw.is_empty() {
            return Ok(Self::Start);
        }
        let bad = || InputError::Invalid("page_token");
        if raw.len() > MAX_TOKEN_CHARS {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let (&tag, body) = bytes.split_first().ok_or_else(bad)?;
        let body = std::str::from_utf8(body).map_err(|_| bad())?;
        match (kind, tag) {
            (PageKind::Users, USER_TAG) => Ok(Self::AfterUsername(body.to_owned())),
            (PageKind::Events, EVENT_TAG) => body
                .parse()
                .ok()
                .filter(|seq: &i64| *seq > 0)
                .map(Self::BeforeSeq)
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }

    /// The token as the client sees it: empty for the first page.
    pub fn encode(&self) -> String {
        let (tag, body) = match self {
            Self::Start => return String::new(),
            Self::AfterUsername(name) => (USER_TAG, name.clone()),
            Self::BeforeSeq(seq) => (EVENT_TAG, seq.to_string()),
        };
        let mut bytes = vec![tag];
        bytes.extend_from_slice(body.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// Which listing a page token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    Users,
    Events,
}

/// Past every username: usernames are at most 256 bytes, and this is 65 of the greatest
/// character (260 bytes), so it sorts after any of them, bytewise as the stores compare names.
fn past_every_username() -> String {
    char::MAX.to_string().repeat(65)
}

/// The names starting with `prefix`: from `prefix` (inclusive) to the returned bound (exclusive),
/// in the bytewise order the stores keep names in.
pub fn prefix_range(prefix: &str) -> (String, String) {
    let mut end: Vec<char> = prefix.chars().collect();
    while let Some(last) = end.pop() {
        // The next character after `last`, skipping the surrogates, which no string holds.
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            end.push(next);
            return (prefix.to_owned(), end.into_iter().collect());
        }
    }
    (prefix.to_owned(), past_every_username())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_the_position_it_was_made_from() {
        for token in [
            PageToken::AfterUsername("ålice/ü".into()),
            PageToken::AfterUsername(String::new()),
        ] {
            assert_eq!(
                PageToken::parse(&token.encode(), PageKind::Users),
                Ok(token)
            );
        }
        let events = PageToken::BeforeSeq(42);
        assert_eq!(
            PageToken::parse(&events.encode(), PageKind::Events),
            Ok(events)
        );
        assert_eq!(PageToken::parse("", PageKind::Events), Ok(PageToken::Start));
    }

    #[test]
    fn a_token_of_another_listing_or_garbage_is_refused() {
        let users = PageToken::AfterUsername("alice".into()).encode();
        assert!(PageToken::parse(&users, PageKind::Events).is_err());
        for raw in ["!!", "ZQ", "ZS0x", &"A".repeat(500)] {
            assert!(PageToken::parse(raw, PageKind::Events).is_err(), "{raw}");
        }
    }

    #[test]
    fn page_sizes_default_and_are_capped() {
        assert_eq!(page_size(0), Ok(100));
        assert_eq!(page_size(1000), Ok(1000));
        assert!(page_size(1001).is_err());
    }

    #[test]
    fn a_prefix_covers_exactly_the_names_that_start_with_it() {
        let (from, until) = prefix_range("ab");
        let inside = |name: &str| from.as_str() <= name && name < until.as_str();
        assert!(inside("ab") && inside("abz") && inside(&format!("ab{}", char::MAX)));
        assert!(!inside("a") && !inside("ac") && !inside("b"));
        assert_eq!(prefix_range("a\u{d7ff}").1, "a\u{e000}");
        let (_, all) = prefix_range("");
        assert!(all.as_str() > char::MAX.to_string().repeat(64).as_str());
    }
}
