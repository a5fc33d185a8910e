//! The API key format of docs/DESIGN.md §2, fixed by product decision.
//!
//! ```text
//! wandb_v1_<key id: 27 base62>_<secret: 43 base62><checksum: 6 base62>
//! \________ key ID _________/
//! ```
//!
//! The key ID is public: it is shown in lists and logs and is how the server finds the
//! stored digest. The 49 characters after it (secret and checksum) are hashed with one
//! SHA-256; keys carry 256 bits of entropy, so no slow hash is needed. The checksum is
//! CRC32 (IEEE) of everything before it, so a scanner or the server rejects a random or
//! mistyped string without a database lookup.
//!
//! Legacy keys (`[A-Za-z0-9]{40}`, or `<prefix>-[A-Za-z0-9]{40}` as on-prem W&B issued
//! them) carry no key ID: they are stored as the SHA-256 of the whole key.
//!
//! [`PresentedKey::parse`] never panics and never allocates: it runs on every request,
//! on input an attacker chooses.

use crate::base62::{self, RandomError};
use crate::secret::PlainKey;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The layout version written after the prefix. It names this layout, not the product.
pub const LAYOUT_VERSION: &str = "v1";
/// Random base62 characters in a key ID (about 160 bits).
pub const KEY_ID_RANDOM_LEN: usize = 27;
/// Random base62 characters in a secret (about 256 bits).
pub const SECRET_LEN: usize = 43;
/// Base62 characters of the CRC32 checksum.
pub const CHECKSUM_LEN: usize = 6;
/// The hashed part of a v1 key: secret and checksum.
pub const HASHED_TAIL_LEN: usize = SECRET_LEN + CHECKSUM_LEN;
/// The longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 32;
/// Characters of a legacy key after its optional `<prefix>-`.
pub const LEGACY_BODY_LEN: usize = 40;
/// Characters of a legacy key shown in lists before the ellipsis.
pub const LEGACY_DISPLAY_LEN: usize = 6;
/// No key of any format is longer than this; longer input is rejected before parsing.
pub const MAX_KEY_LEN: usize = MAX_PREFIX_LEN + 4 + KEY_ID_RANDOM_LEN + 1 + HASHED_TAIL_LEN;

/// Why a presented string is not a key. Every variant means "unauthenticated" to a
/// client; they are distinct for metrics and the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("the API key is empty")]
    Empty,
    #[error("the API key is longer than any valid key")]
    TooLong,
    #[error("the API key is not in a known format")]
    Malformed,
    #[error("the API key's checksum does not match; it was mistyped or truncated")]
    BadChecksum,
}

/// The prefix of new keys (`key_prefix`, default `wandb`): 1 to 32 ASCII letters and
/// digits, so that the first `_` of a key always ends it.
///
/// NEVER CHANGE THE PREFIX of existing keys: a key's stored key ID contains its own
/// prefix, so changing the setting affects only keys created afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub const DEFAULT: &'static str = "wandb";

    pub fn parse(s: &str) -> Result<Self, KeyFormatError> {
        if is_prefix(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(KeyFormatError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for KeyPrefix {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

fn is_prefix(s: &str) -> bool {
    (1..=MAX_PREFIX_LEN).contains(&s.len()) && base62::all_base62(s.as_bytes())
}

/// The public identifier of a stored key, used in URLs, lists and logs.
///
/// For a v1 key it is the key's own first part, `<prefix>_v1_<27 base62>`. Legacy keys
/// have no such part, so the server gives each a handle `legacy_<27 base62>` that
/// appears nowhere in the key itself.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

/// The start of the handle given to legacy keys.
pub const LEGACY_HANDLE_PREFIX: &str = "legacy_";

impl KeyId {
    /// Accepts a v1 key ID or a legacy handle.
    pub fn parse(s: &str) -> Result<Self, KeyFormatError> {
        if s.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        if s.len() > MAX_KEY_LEN {
            return Err(KeyFormatError::TooLong);
        }
        // `legacy` is a valid key prefix too: `legacy_v1_…` is a v1 key ID, not a handle.
        let ok = is_legacy_handle(s) || split_v1_key_id(s).is_some();
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(KeyFormatError::Malformed)
        }
    }

    /// A fresh handle for a legacy key.
    pub fn new_legacy_handle() -> Result<Self, RandomError> {
        Ok(Self(format!(
            "{LEGACY_HANDLE_PREFIX}{}",
            base62::random_string(KEY_ID_RANDOM_LEN)?
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_legacy_handle(&self) -> bool {
        is_legacy_handle(&self.0)
    }
}

/// `legacy_<27 base62>`: no `_` after the first, unlike a v1 key ID with that prefix.
fn is_legacy_handle(s: &str) -> bool {
    s.strip_prefix(LEGACY_HANDLE_PREFIX)
        .is_some_and(|rest| rest.len() == KEY_ID_RANDOM_LEN && base62::all_base62(rest.as_bytes()))
}

impl From<V1Key<'_>> for KeyId {
    /// A parsed v1 key already proved its key ID well-formed.
    fn from(key: V1Key<'_>) -> Self {
        Self(key.key_id.to_owned())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// Splits `<prefix>_v1_<27 base62>` into its prefix; `None` if `s` is not exactly that.
fn split_v1_key_id(s: &str) -> Option<&str> {
    let underscore = s.find('_')?;
    let (prefix, rest) = s.split_at(underscore);
    let random = rest.strip_prefix("_v1_")?;
    (is_prefix(prefix) && random.len() == KEY_ID_RANDOM_LEN && base62::all_base62(random.as_bytes())).then_some(prefix)
}

/// The SHA-256 digest stored for a key. Not secret, but compared in constant time so
/// that response timing says nothing about how close a guess came.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// Parses 64 hexadecimal characters, as legacy digests are imported.
    pub fn from_hex(s: &str) -> Option<Self> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            out[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(out))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hexadecimal characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &KeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyDigest({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A key as a client presented it, parsed but not yet checked against the store.
/// Its `Debug` shows no secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PresentedKey<'a> {
    V1(V1Key<'a>),
    Legacy(LegacyKey<'a>),
}

/// A well-formed v1 key whose checksum matches.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct V1Key<'a> {
    key_id: &'a str,
    hashed_tail: &'a str,
}

/// A well-formed legacy key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LegacyKey<'a> {
    whole: &'a str,
}

impl<'a> PresentedKey<'a> {
    /// Parses a presented key. Total on every input: never panics, never allocates.
    /// A v1 key with a wrong checksum is rejected here, before any storage is touched.
    pub fn parse(s: &'a str) -> Result<Self, KeyFormatError> {
        if s.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        if s.len() > MAX_KEY_LEN {
            return Err(KeyFormatError::TooLong);
        }
        if let Some(key) = parse_v1(s)? {
            return Ok(Self::V1(key));
        }
        if is_legacy(s) {
            return Ok(Self::Legacy(LegacyKey { whole: s }));
        }
        Err(KeyFormatError::Malformed)
    }

    /// The digest to compare with the stored one.
    pub fn digest(&self) -> KeyDigest {
        match self {
            Self::V1(k) => k.digest(),
            Self::Legacy(k) => k.digest(),
        }
    }
}

/// `Ok(None)` when `s` does not have the v1 shape (it may be legacy), `Err` when it
/// has the shape but not the checksum.
fn parse_v1(s: &str) -> Result<Option<V1Key<'_>>, KeyFormatError> {
    let Some(underscore) = s.find('_') else {
        return Ok(None);
    };
    let key_id_len = underscore + 4 + KEY_ID_RANDOM_LEN;
    if s.len() != key_id_len + 1 + HASHED_TAIL_LEN || !s.is_char_boundary(key_id_len) {
        return Ok(None);
    }
    let (key_id, rest) = s.split_at(key_id_len);
    let Some(hashed_tail) = rest.strip_prefix('_') else {
        return Ok(None);
    };
    if split_v1_key_id(key_id).is_none() || !base62::all_base62(hashed_tail.as_bytes()) {
        return Ok(None);
    }
    let (checked, checksum) = s.split_at(s.len() - CHECKSUM_LEN);
    if checksum.as_bytes() != checksum_of(checked) {
        return Err(KeyFormatError::BadChecksum);
    }
    Ok(Some(V1Key { key_id, hashed_tail }))
}

fn is_legacy(s: &str) -> bool {
    let body = match s.split_once('-') {
        Some((prefix, body)) if is_prefix(prefix) => body,
        Some(_) => return false,
        None => s,
    };
    body.len() == LEGACY_BODY_LEN && base62::all_base62(body.as_bytes())
}

/// CRC32 (IEEE) of `checked`, as a big-endian base62 number left-padded to 6.
fn checksum_of(checked: &str) -> [u8; CHECKSUM_LEN] {
    let mut out = [0u8; CHECKSUM_LEN];
    base62::encode_padded(u64::from(crc32fast::hash(checked.as_bytes())), &mut out);
    out
}

impl<'a> V1Key<'a> {
    /// The public key ID, `<prefix>_v1_<27 base62>`.
    pub fn key_id(&self) -> &'a str {
        self.key_id
    }

    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(self.hashed_tail.as_bytes())
    }
}

impl<'a> LegacyKey<'a> {
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(self.whole.as_bytes())
    }

    /// What lists show for this key: its first 6 characters and an ellipsis.
    pub fn display(&self) -> String {
        legacy_display(self.whole)
    }
}

fn legacy_display(whole: &str) -> String {
    let shown = whole.get(..LEGACY_DISPLAY_LEN).unwrap_or(whole);
    format!("{shown}…")
}

impl fmt::Debug for PresentedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V1(k) => write!(f, "PresentedKey::V1({})", k.key_id),
            Self::Legacy(_) => f.write_str("PresentedKey::Legacy(<redacted>)"),
        }
    }
}

impl fmt::Debug for V1Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V1Key({})", self.key_id)
    }
}

impl fmt::Debug for LegacyKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LegacyKey(<redacted>)")
    }
}

/// A newly generated key: what is stored, and the plaintext shown once.
#[derive(Debug)]
pub struct GeneratedKey {
    pub key_id: KeyId,
    pub digest: KeyDigest,
    /// What lists show: the key ID, or a legacy key's first characters.
    pub display: String,
    pub plaintext: PlainKey,
}

/// Generates a new v1 key from the OS CSPRNG.
pub fn generate_v1(prefix: &KeyPrefix) -> Result<GeneratedKey, RandomError> {
    let mut random = [0u8; KEY_ID_RANDOM_LEN + SECRET_LEN];
    base62::fill_random(&mut random)?;
    let (id_part, secret_part) = random.split_at(KEY_ID_RANDOM_LEN);
    let mut key = String::with_capacity(prefix.0.len() + 4 + KEY_ID_RANDOM_LEN + 1 + HASHED_TAIL_LEN);
    key.push_str(&prefix.0);
    key.push_str("_v1_");
    key.extend(id_part.iter().map(|&b| char::from(b)));
    let key_id = KeyId(key.clone());
    key.push('_');
    key.extend(secret_part.iter().map(|&b| char::from(b)));
    random.fill(0);
    let checksum = checksum_of(&key);
    key.extend(checksum.iter().map(|&b| char::from(b)));
    let digest = KeyDigest::of(&key.as_bytes()[key_id.0.len() + 1..]);
    Ok(GeneratedKey {
        display: key_id.0.clone(),
        key_id,
        digest,
        plaintext: PlainKey::new(key),
    })
}

/// Generates a legacy-format key, 40 lowercase hex characters, optionally after
/// `<prefix>-`, for SDKs older than 0.22.3 that reject longer keys.
pub fn generate_legacy(prefix: Option<&KeyPrefix>) -> Result<GeneratedKey, RandomError> {
    let mut bytes = [0u8; LEGACY_BODY_LEN / 2];
    getrandom::fill(&mut bytes).map_err(|e| RandomError::from_os(e.to_string()))?;
    let mut key = String::with_capacity(MAX_PREFIX_LEN + 1 + LEGACY_BODY_LEN);
    if let Some(prefix) = prefix {
        key.push_str(&prefix.0);
        key.push('-');
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        key.push(char::from(HEX[usize::from(b >> 4)]));
        key.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    bytes.fill(0);
    Ok(GeneratedKey {
        key_id: KeyId::new_legacy_handle()?,
        digest: KeyDigest::of(key.as_bytes()),
        display: legacy_display(&key),
        plaintext: PlainKey::new(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> GeneratedKey {
        generate_v1(&KeyPrefix::default()).unwrap()
    }

    #[test]
    fn a_new_key_has_the_wandb_shape() {
        let k = v1();
        let s = k.plaintext.expose();
        assert_eq!(s.len(), 86);
        assert!(s.starts_with("wandb_v1_"));
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert_eq!(s.matches('_').count(), 3);
        assert!(!s.contains('-'), "old SDKs split keys at the first dash");
        assert_eq!(k.key_id.as_str(), &s[..36]);
        assert_eq!(k.display, k.key_id.as_str());
    }

    #[test]
    fn a_new_key_parses_to_its_id_and_digest() {
        let k = v1();
        let PresentedKey::V1(p) = PresentedKey::parse(k.plaintext.expose()).unwrap() else {
            panic!("not parsed as v1")
        };
        assert_eq!(p.key_id(), k.key_id.as_str());
        assert!(p.digest().ct_eq(&k.digest));
        assert_eq!(KeyId::parse(p.key_id()).unwrap(), k.key_id);
    }

    #[test]
    fn the_digest_covers_secret_and_checksum_only() {
        let k = v1();
        let s = k.plaintext.expose();
        assert_eq!(k.digest, KeyDigest::of(&s.as_bytes()[37..]));
    }

    #[test]
    fn the_protocol_documents_sample_key_is_malformed_only_in_its_checksum() {
        // The sample in wandb-wire-protocol.md §5 has the v1 shape; its last six
        // characters were not made with our checksum, so it must fail as a checksum.
        let sample = "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";
        assert_eq!(sample.len(), 86);
        assert_eq!(PresentedKey::parse(sample), Err(KeyFormatError::BadChecksum));
    }

    #[test]
    fn a_custom_prefix_makes_keys_of_its_own() {
        let prefix = KeyPrefix::parse("acme").unwrap();
        let k = generate_v1(&prefix).unwrap();
        assert!(k.plaintext.expose().starts_with("acme_v1_"));
        assert!(matches!(
            PresentedKey::parse(k.plaintext.expose()),
            Ok(PresentedKey::V1(_))
        ));
        assert!(KeyPrefix::parse("has_underscore").is_err());
        assert!(KeyPrefix::parse("").is_err());
        assert!(KeyPrefix::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn legacy_keys_parse_with_and_without_prefix() {
        let plain = "0123456789abcdef0123456789abcdef01234567";
        let local = "local-0123456789abcdef0123456789abcdef01234567";
        for s in [plain, local] {
            let PresentedKey::Legacy(k) = PresentedKey::parse(s).unwrap() else {
                panic!("{s} not legacy")
            };
            assert_eq!(k.digest(), KeyDigest::of(s.as_bytes()));
        }
        assert_eq!(PresentedKey::parse(&plain[..39]), Err(KeyFormatError::Malformed));
        assert_eq!(
            PresentedKey::parse("-0123456789abcdef0123456789abcdef01234567"),
            Err(KeyFormatError::Malformed)
        );
        assert_eq!(
            PresentedKey::parse("a-b-0123456789abcdef0123456789abcdef0123"),
            Err(KeyFormatError::Malformed)
        );
    }

    #[test]
    fn generated_legacy_keys_are_lowercase_hex_and_display_six_characters() {
        let k = generate_legacy(None).unwrap();
        let s = k.plaintext.expose();
        assert_eq!(s.len(), 40);
        assert!(s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(k.display, format!("{}…", &s[..6]));
        assert!(k.key_id.is_legacy_handle());
        assert!(!k.key_id.as_str().contains(&s[..6]) || k.key_id.as_str().len() > 6);
        let local = generate_legacy(Some(&KeyPrefix::parse("local").unwrap())).unwrap();
        assert!(local.plaintext.expose().starts_with("local-"));
        assert_eq!(local.plaintext.expose().len(), 46);
        assert!(matches!(
            PresentedKey::parse(local.plaintext.expose()),
            Ok(PresentedKey::Legacy(_))
        ));
    }

    #[test]
    fn key_ids_parse_strictly() {
        let k = v1();
        assert!(KeyId::parse(k.key_id.as_str()).is_ok());
        assert!(
            KeyId::parse(k.plaintext.expose()).is_err(),
            "a whole key is not a key ID"
        );
        assert!(KeyId::parse(&k.key_id.as_str()[..35]).is_err());
        assert!(KeyId::parse("legacy_").is_err());
        assert!(KeyId::parse(KeyId::new_legacy_handle().unwrap().as_str()).is_ok());
        assert_eq!(KeyId::parse(""), Err(KeyFormatError::Empty));
    }

    #[test]
    fn a_v1_key_id_with_the_prefix_legacy_is_not_a_legacy_handle() {
        // Found by fuzz/key_parser: `legacy` is a valid prefix, and its key IDs were
        // taken for legacy handles and refused by KeyId::parse.
        let k = generate_v1(&KeyPrefix::parse("legacy").unwrap()).unwrap();
        assert!(k.key_id.as_str().starts_with("legacy_v1_"));
        assert!(!k.key_id.is_legacy_handle());
        assert_eq!(KeyId::parse(k.key_id.as_str()), Ok(k.key_id.clone()));
        let PresentedKey::V1(p) = PresentedKey::parse(k.plaintext.expose()).unwrap() else {
            panic!("not parsed as v1")
        };
        assert_eq!(KeyId::from(p), k.key_id);
        let handle = KeyId::new_legacy_handle().unwrap();
        assert!(handle.is_legacy_handle());
        assert_eq!(KeyId::parse(handle.as_str()), Ok(handle));
    }

    #[test]
    fn hex_digests_parse() {
        let d = KeyDigest::of(b"x");
        let hex = d.to_hex();
        assert_eq!(KeyDigest::from_hex(&hex), Some(d));
        assert_eq!(KeyDigest::from_hex(&hex.to_uppercase()), Some(d));
        assert_eq!(KeyDigest::from_hex(&hex[..63]), None);
        assert_eq!(KeyDigest::from_hex(&hex.replace(&hex[..1], "g")), None);
    }

    #[test]
    fn debug_output_never_contains_a_secret() {
        let k = v1();
        let s = k.plaintext.expose();
        let parsed = PresentedKey::parse(s).unwrap();
        let secret = &s[37..];
        for shown in [format!("{k:?}"), format!("{parsed:?}")] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let legacy = "0123456789abcdef0123456789abcdef01234567";
        assert!(!format!("{:?}", PresentedKey::parse(legacy).unwrap()).contains("0123456789"));
    }
}
