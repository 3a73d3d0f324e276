//! `verify` never panics, whatever it is given: arbitrary strings, and three base64url parts of
//! arbitrary bytes or of arbitrary JSON-like text (the shapes a parser is most likely to trip on).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::prelude::*;

use super::fixture;

fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        r#"\{("[a-z]{1,4}":("[a-zA-Z+/]{0,10}"|-?[0-9]{1,20}|null|\[\]|\{\}),?){0,6}\}"#
            .prop_map(|json| URL_SAFE_NO_PAD.encode(json)),
        "[A-Za-z0-9_=.-]{0,40}",
    ]
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(token in any::<String>()) {
        let f = fixture();
        prop_assert!(f.verifier.verify(&token).is_err());
    }

    #[test]
    fn arbitrary_three_part_tokens_never_panic(header in part(), body in part(), signature in part()) {
        let f = fixture();
        let _ = f.verifier.verify(&format!("{header}.{body}.{signature}"));
    }

    #[test]
    fn a_genuine_header_and_signature_around_any_body_never_panic(body in part()) {
        let f = fixture();
        let genuine = f.token();
        let parts: Vec<&str> = genuine.split('.').collect();
        let spliced = format!("{}.{body}.{}", parts[0], parts[2]);
        prop_assert!(f.verifier.verify(&spliced).is_err());
    }
}
