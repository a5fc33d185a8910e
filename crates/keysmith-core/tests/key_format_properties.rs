#![allow(clippy::unwrap_used, clippy::panic)]
//! Property tests of the key format (issue 2): the round trip, the checksum against
//! every single-character change, and a parser that is total on arbitrary input.

use keysmith_core::{KeyId, KeyPrefix, PresentedKey, generate_v1};
use proptest::prelude::*;

const KEY_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_keys_round_trip(prefix in "[A-Za-z0-9]{1,32}") {
        let prefix = KeyPrefix::parse(&prefix).unwrap();
        let key = generate_v1(&prefix).unwrap();
        let parsed = PresentedKey::parse(key.plaintext.expose()).unwrap();
        let PresentedKey::V1(v1) = parsed else { panic!("not v1") };
        prop_assert_eq!(v1.key_id(), key.key_id.as_str());
        prop_assert!(v1.digest().ct_eq(&key.digest));
        prop_assert_eq!(KeyId::parse(v1.key_id()).unwrap(), key.key_id);
    }

    #[test]
    fn every_single_character_change_is_rejected(position in 0usize..86, replacement in 0usize..KEY_CHARS.len()) {
        let key = generate_v1(&KeyPrefix::default()).unwrap();
        let mut bytes = key.plaintext.expose().as_bytes().to_vec();
        let new = KEY_CHARS[replacement];
        prop_assume!(bytes[position] != new);
        bytes[position] = new;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(PresentedKey::parse(&changed).is_err(), "accepted {changed}");
    }

    #[test]
    fn the_parser_is_total_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = PresentedKey::parse(&s);
        let _ = KeyId::parse(&s);
    }

    #[test]
    fn the_parser_is_total_on_near_keys(s in "[A-Za-z0-9_\\-]{0,100}") {
        let _ = PresentedKey::parse(&s);
        let _ = KeyId::parse(&s);
    }

    #[test]
    fn multibyte_input_of_key_length_never_panics(prefix in "[a-z]{1,5}", tail in "\\PC{80,90}") {
        let s = format!("{prefix}_v1_{tail}");
        let _ = PresentedKey::parse(&s);
    }
}

#[test]
fn every_single_character_change_is_rejected_exhaustively_for_one_key() {
    let key = generate_v1(&KeyPrefix::default()).unwrap();
    let original = key.plaintext.expose().as_bytes().to_vec();
    for position in 0..original.len() {
        for &new in KEY_CHARS {
            if original[position] == new {
                continue;
            }
            let mut bytes = original.clone();
            bytes[position] = new;
            let changed = String::from_utf8(bytes).unwrap();
            assert!(PresentedKey::parse(&changed).is_err(), "position {position} accepted");
        }
    }
}
