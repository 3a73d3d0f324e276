//! The parsers that turn wire strings into domain values, fed arbitrary input: never a panic, and
//! each one accepts exactly what API.md says it accepts. What parses comes back unchanged (a name is
//! compared exactly as given), a refresh token that parses is of the one canonical form, and
//! oversized input is refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use latchkey::{
    crypto::{jwt, seal::MasterKey},
    domain::{
        token::{PresentedToken, RANDOM_BYTES, RefreshToken},
        types::{ClientId, Device, MAX_TOKEN_BYTES, Password, Scope, Username},
    },
};
use proptest::prelude::*;

/// Text an attacker would send: anything at all, ASCII with control characters, and lengths
/// around the limits in one- and multi-byte characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x7f]{0,40}",
        "[a-zé€😀 \\t\\x00\\x7f\\u{85}\\u{2028}]{0,40}",
        "[a-z]{250,262}",
        "[aé€]{80,300}",
        "[a-z]{1015,1030}",
    ]
}

/// A string that could be a refresh token, or nearly: the right alphabet and length, or a real
/// token with one character changed, added or removed.
fn refresh_like() -> impl Strategy<Value = String> {
    let genuine = any::<[u8; RANDOM_BYTES]>().prop_map(|r| RefreshToken::encode(&r));
    let edited = (genuine, any::<usize>(), any::<char>(), 0..3u8).prop_map(|(t, at, c, how)| {
        let mut chars: Vec<char> = t.expose().chars().collect();
        let at = at % chars.len();
        match how {
            0 => chars[at] = c,
            1 => chars.insert(at, c),
            _ => drop(chars.remove(at)),
        }
        chars.into_iter().collect::<String>()
    });
    prop_oneof![
        "lk_rt_[A-Za-z0-9_-]{43}",
        "lk_rt_[A-Za-z0-9_+/=-]{40,46}",
        edited,
        text()
    ]
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

proptest! {
    #[test]
    fn a_username_parses_exactly_when_the_contract_allows_and_round_trips(raw in text()) {
        let valid = !raw.is_empty() && raw.len() <= 256 && !has_control(&raw);
        match Username::parse(&raw) {
            Ok(name) => prop_assert!(valid && name.as_str() == raw, "{raw:?}"),
            Err(_) => prop_assert!(!valid, "{raw:?} refused"),
        }
    }

    #[test]
    fn a_password_is_any_text_of_1_to_1024_bytes(raw in text()) {
        let valid = (1..=1024).contains(&raw.len());
        match Password::parse(raw.clone()) {
            Ok(password) => prop_assert!(valid && password.expose() == raw),
            Err(_) => prop_assert!(!valid, "{} bytes refused", raw.len()),
        }
    }

    #[test]
    fn a_client_id_is_at_most_256_bytes_and_empty_means_default(raw in text()) {
        let valid = raw.len() <= 256 && !has_control(&raw);
        match ClientId::parse(raw.clone()) {
            Ok(id) if raw.is_empty() => prop_assert_eq!(id.as_str(), "default"),
            Ok(id) => prop_assert!(valid && id.as_str() == raw),
            Err(_) => prop_assert!(!valid, "{raw:?} refused"),
        }
    }

    #[test]
    fn a_device_is_at_most_256_bytes_without_control_characters(raw in text()) {
        let valid = raw.len() <= 256 && !has_control(&raw);
        match Device::parse(raw.clone()) {
            Ok(device) => prop_assert!(valid && device.into_string() == raw),
            Err(_) => prop_assert!(!valid, "{raw:?} refused"),
        }
    }

    #[test]
    fn a_scope_is_one_word(raw in text()) {
        let valid = !raw.is_empty() && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        match Scope::parse(raw.clone()) {
            Ok(scope) => prop_assert!(valid && scope.into_string() == raw),
            Err(_) => prop_assert!(!valid, "{raw:?} refused"),
        }
    }

    #[test]
    fn every_refresh_token_made_parses_back(random in any::<[u8; RANDOM_BYTES]>()) {
        let token = RefreshToken::encode(&random);
        prop_assert_eq!(RefreshToken::parse(token.expose().to_owned()), Ok(token.clone()));
        prop_assert_eq!(
            RefreshToken::from_bytes(token.expose().as_bytes().to_vec()),
            Ok(token)
        );
    }

    /// One token, one string: a token that parses has the prefix, 49 characters, and is the
    /// canonical encoding of its bits (no second spelling that would hash differently).
    #[test]
    fn a_refresh_token_that_parses_is_of_the_one_canonical_form(raw in refresh_like()) {
        if let Ok(token) = RefreshToken::parse(raw.clone()) {
            prop_assert_eq!(token.expose(), raw.as_str());
            prop_assert!(raw.starts_with("lk_rt_") && raw.len() == 6 + 43, "{raw:?}");
            let bits = URL_SAFE_NO_PAD.decode(&raw[6..]).expect("parsed, so base64url");
            let bits: [u8; RANDOM_BYTES] = bits.try_into().expect("parsed, so 32 bytes");
            let canonical = RefreshToken::encode(&bits);
            prop_assert_eq!(canonical.expose(), raw.as_str());
        }
    }

    #[test]
    fn refresh_token_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let parsed = RefreshToken::from_bytes(bytes.clone());
        prop_assert_eq!(parsed.is_ok(), std::str::from_utf8(&bytes).is_ok_and(|s| {
            RefreshToken::parse(s.to_owned()).is_ok()
        }));
    }

    /// Introspect and Revoke tell the kinds apart by form alone: the refresh form, its prefix
    /// without its form, or anything else (an access token if it verifies).
    #[test]
    fn a_presented_token_is_told_apart_by_its_form(raw in refresh_like()) {
        let refresh = RefreshToken::parse(raw.clone()).ok();
        match PresentedToken::parse(&raw) {
            Ok(PresentedToken::Refresh(token)) => prop_assert_eq!(Some(token), refresh),
            Ok(PresentedToken::Unrecognised) => {
                prop_assert!(refresh.is_none() && raw.starts_with("lk_rt_"));
            }
            Ok(PresentedToken::Access(_)) => {
                prop_assert!(refresh.is_none() && !raw.starts_with("lk_rt_"));
            }
            Err(_) => prop_assert!(raw.len() > MAX_TOKEN_BYTES),
        }
    }

    #[test]
    fn an_oversized_token_is_refused_whatever_it_holds(
        head in prop_oneof![Just(String::new()), Just("lk_rt_".to_owned()), text()],
        fill in "[ -~]{1,8}",
        extra in 1..2048usize,
    ) {
        let raw = format!("{head}{}", fill.repeat((MAX_TOKEN_BYTES + extra) / fill.len() + 1));
        prop_assert!(PresentedToken::parse(&raw).is_err());
        prop_assert!(RefreshToken::parse(raw).is_err());
    }

    #[test]
    fn the_key_id_of_any_text_never_panics(
        raw in text(),
        header in any::<Vec<u8>>(),
        rest in "[A-Za-z0-9_.-]{0,60}",
    ) {
        let _ = jwt::key_id(&raw);
        let _ = jwt::key_id(&format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header)));
    }

    #[test]
    fn the_key_id_of_a_well_formed_header_is_the_one_it_names(kid in any::<String>()) {
        let header = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
        let token = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()));
        prop_assert_eq!(jwt::key_id(&token).ok(), Some(kid));
    }

    #[test]
    fn a_master_key_is_base64_of_exactly_32_bytes(raw in text(), bytes in any::<Vec<u8>>()) {
        prop_assert!(MasterKey::from_base64(&raw).is_err() || raw.trim().len() == 44);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert_eq!(MasterKey::from_base64(&encoded).is_ok(), bytes.len() == 32);
    }

    /// Sealed values come back from the store: bytes that were not sealed by this key open to
    /// nothing, and never to a panic.
    #[test]
    fn unsealing_random_bytes_fails_cleanly(
        sealed in proptest::collection::vec(any::<u8>(), 0..120),
        context in any::<Vec<u8>>(),
    ) {
        let sealer = MasterKey::generate().expect("a key").sealer("hostile");
        prop_assert!(sealer.open(&sealed, &context).is_err());
    }
}
