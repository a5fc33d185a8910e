//! `PresentedKey::parse` and `KeyId::parse` on arbitrary input, and the generators.
//!
//! Properties:
//! - parsing never panics and never allocates (a counting allocator checks);
//! - `Empty` exactly for "", `TooLong` exactly past `MAX_KEY_LEN`;
//! - a parsed v1 key has the v1 layout, its `key_id()` is the key's first part and
//!   parses as a `KeyId`, its digest is SHA-256 of the part after it, its checksum is
//!   the CRC32 of the rest, and changing any one character makes it fail (checksum or
//!   layout); `Debug` shows no secret;
//! - a parsed legacy key is `[<prefix>-]<40 base62>` with the digest of the whole key;
//! - `BadChecksum` means the layout is right: the correct checksum makes it parse;
//! - a parsed `KeyId` (not a legacy handle) completed with any tail and its checksum
//!   parses back to a key with that ID;
//! - a key generated with a prefix from the input parses back to its own ID and digest.

#![no_main]

use keysmith_core::base62::{self, is_base62};
use keysmith_core::key_format::{
    CHECKSUM_LEN, HASHED_TAIL_LEN, KEY_ID_RANDOM_LEN, LEGACY_BODY_LEN, MAX_KEY_LEN, SECRET_LEN,
};
use keysmith_core::{KeyDigest, KeyFormatError, KeyId, KeyPrefix, PresentedKey, generate_legacy, generate_v1};
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts allocations so that "never allocates" is checked, not assumed.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    // Keys arrive as header text: check valid UTF-8 as it is, and bytes that are not
    // through their lossy decoding.
    match std::str::from_utf8(data) {
        Ok(s) => check(s),
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});

fn check(s: &str) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let parsed = PresentedKey::parse(s);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), before, "parse allocated");
    assert_eq!(PresentedKey::parse(s), parsed, "parse is not deterministic");

    match parsed {
        Err(KeyFormatError::Empty) => assert!(s.is_empty()),
        Err(KeyFormatError::TooLong) => assert!(s.len() > MAX_KEY_LEN),
        Err(KeyFormatError::BadChecksum) => {
            assert!(!s.is_empty() && s.len() <= MAX_KEY_LEN);
            let fixed = with_checksum(&s[..s.len() - CHECKSUM_LEN]);
            assert!(
                matches!(PresentedKey::parse(&fixed), Ok(PresentedKey::V1(_))),
                "BadChecksum for {s:?}, but the right checksum does not make it parse"
            );
        }
        Err(KeyFormatError::Malformed) => assert!(!s.is_empty() && s.len() <= MAX_KEY_LEN),
        Ok(PresentedKey::V1(key)) => {
            let key_id = key.key_id();
            let prefix = key_id.split('_').next().unwrap_or("");
            assert!(KeyPrefix::parse(prefix).is_ok(), "prefix {prefix:?} of {s:?}");
            assert_eq!(key_id.len(), prefix.len() + "_v1_".len() + KEY_ID_RANDOM_LEN);
            assert_eq!(s.len(), key_id.len() + 1 + HASHED_TAIL_LEN);
            assert!(s.starts_with(key_id) && s[key_id.len()..].starts_with('_'));
            assert!(s.bytes().all(|b| is_base62(b) || b == b'_'));
            assert_eq!(s.matches('_').count(), 3);
            let tail = &s[key_id.len() + 1..];
            assert_eq!(key.digest(), KeyDigest::of(tail.as_bytes()));
            assert_eq!(PresentedKey::V1(key).digest(), key.digest());
            assert_eq!(with_checksum(&s[..s.len() - CHECKSUM_LEN]), s);
            let id = KeyId::parse(key_id).expect("a parsed key's ID parses");
            assert_eq!(id, KeyId::from(key));
            assert!(!id.is_legacy_handle());
            assert!(KeyId::parse(s).is_err(), "a whole key is not a key ID");
            let shown = format!("{:?} {:?}", key, PresentedKey::V1(key));
            assert!(!shown.contains(&tail[..SECRET_LEN]), "Debug shows the secret: {shown}");
            one_character_changed_fails(s);
        }
        Ok(PresentedKey::Legacy(key)) => {
            let body = match s.split_once('-') {
                Some((prefix, body)) => {
                    assert!(KeyPrefix::parse(prefix).is_ok(), "legacy prefix {prefix:?}");
                    body
                }
                None => s,
            };
            assert_eq!(body.len(), LEGACY_BODY_LEN);
            assert!(body.bytes().all(is_base62));
            assert_eq!(key.digest(), KeyDigest::of(s.as_bytes()));
            assert!(!format!("{key:?}").contains(body), "Debug shows a legacy key");
        }
    }

    key_id_round_trip(s);
    generated_keys_parse(s);
}

/// `checked` followed by its CRC32 checksum, as the key format computes it.
fn with_checksum(checked: &str) -> String {
    let mut checksum = [0u8; CHECKSUM_LEN];
    base62::encode_padded(u64::from(crc32fast::hash(checked.as_bytes())), &mut checksum);
    let mut key = checked.to_owned();
    key.extend(checksum.iter().map(|&b| char::from(b)));
    key
}

/// A valid v1 key with any one character replaced by another base62 character or `_`
/// is refused: CRC32 catches every single-character change in the checked part, and a
/// changed checksum no longer matches.
fn one_character_changed_fails(s: &str) {
    let bytes = s.as_bytes();
    // Which position and replacement depend on the key, so that each run tries others.
    let pick = crc32fast::hash(bytes) as usize;
    let position = pick % bytes.len();
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    let mut replacement = alphabet[(pick / bytes.len()) % alphabet.len()];
    if replacement == bytes[position] {
        replacement = if replacement == b'0' { b'1' } else { b'0' };
    }
    let mut changed = bytes.to_vec();
    changed[position] = replacement;
    let changed = String::from_utf8(changed).expect("ASCII");
    assert!(
        PresentedKey::parse(&changed).is_err(),
        "{s:?} with byte {position} changed to {:?} still parses",
        char::from(replacement)
    );
}

/// A key ID the parser accepts (the input, or the input up to its last `_`, which is
/// the ID of a whole key), completed with a tail and the checksum, is a key with that
/// ID.
fn key_id_round_trip(s: &str) {
    let before_last_underscore = s.rfind('_').map(|i| &s[..i]);
    for candidate in std::iter::once(s).chain(before_last_underscore) {
        let Ok(id) = KeyId::parse(candidate) else { continue };
        assert_eq!(id.as_str(), candidate);
        if id.is_legacy_handle() {
            continue;
        }
        let secret: String = s
            .bytes()
            .filter(|&b| is_base62(b))
            .chain(std::iter::repeat(b'x'))
            .take(SECRET_LEN)
            .map(char::from)
            .collect();
        let key = with_checksum(&format!("{candidate}_{secret}"));
        match PresentedKey::parse(&key) {
            Ok(PresentedKey::V1(k)) => assert_eq!(k.key_id(), candidate),
            other => panic!("key ID {candidate:?} completed to {key:?} parsed as {other:?}"),
        }
    }
}

/// When the input starts with a valid prefix (up to the first byte that cannot be in
/// one), keys generated with it parse back to themselves.
fn generated_keys_parse(s: &str) {
    let end = s.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(s.len());
    let Ok(prefix) = KeyPrefix::parse(&s[..end]) else {
        return;
    };
    let v1 = generate_v1(&prefix).expect("the OS random source works");
    let plain = v1.plaintext.expose();
    assert!(
        !v1.key_id.is_legacy_handle(),
        "v1 key ID {} taken for a legacy handle",
        v1.key_id
    );
    assert_eq!(
        KeyId::parse(v1.key_id.as_str()).as_ref(),
        Ok(&v1.key_id),
        "a generated key's ID does not parse"
    );
    assert!(plain.starts_with(&format!("{}_v1_", prefix.as_str())));
    match PresentedKey::parse(plain) {
        Ok(PresentedKey::V1(k)) => {
            assert_eq!(k.key_id(), v1.key_id.as_str());
            assert!(k.digest().ct_eq(&v1.digest));
            assert_eq!(v1.display, v1.key_id.as_str());
        }
        other => panic!("generated {plain:?} parsed as {other:?}"),
    }
    let legacy = generate_legacy(Some(&prefix)).expect("the OS random source works");
    match PresentedKey::parse(legacy.plaintext.expose()) {
        Ok(PresentedKey::Legacy(k)) => assert_eq!(k.digest(), legacy.digest),
        other => panic!("generated legacy key parsed as {other:?}"),
    }
    assert!(legacy.key_id.is_legacy_handle());
    assert!(KeyId::parse(legacy.key_id.as_str()).is_ok());
}
