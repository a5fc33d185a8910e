//! Base62 with the alphabet `0-9A-Za-z`, in that order (docs/DESIGN.md §2).
//!
//! Used for the random parts of keys and for the checksum. Random characters come
//! from the OS CSPRNG by rejection sampling, so every character is uniform.

/// The alphabet, in value order: `0` is 0, `A` is 10, `a` is 36.
pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `b` is one of the 62 characters.
#[inline]
pub const fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether every byte of `s` is base62. Looks at every byte without stopping early,
/// which lets the compiler check many bytes per instruction: this runs on each
/// presented key.
pub fn all_base62(s: &[u8]) -> bool {
    s.iter().fold(true, |ok, &b| ok & is_base62(b))
}

/// `value` in base62, most significant digit first, left-padded with `0` to `width`
/// characters. Digits beyond `width` are dropped, so callers choose a width that holds
/// the largest value (6 digits hold any `u32`: 62^6 > 2^32).
pub fn encode_padded(mut value: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
}

/// The error of the OS random source. It is rare enough (no entropy at early boot,
/// a seccomp filter) that callers report it and stop, but it is never a panic.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

impl RandomError {
    pub(crate) fn from_os(message: String) -> Self {
        Self(message)
    }
}

/// Fills `out` with uniformly random base62 characters from the OS CSPRNG.
pub fn fill_random(out: &mut [u8]) -> Result<(), RandomError> {
    // 248 = 4 * 62: bytes at or above it are rejected so that `b % 62` is uniform.
    let mut pool = [0u8; 64];
    let mut filled = 0;
    while filled < out.len() {
        getrandom::fill(&mut pool).map_err(|e| RandomError::from_os(e.to_string()))?;
        for &b in &pool {
            if b < 248 && filled < out.len() {
                out[filled] = ALPHABET[(b % 62) as usize];
                filled += 1;
            }
        }
    }
    pool.fill(0);
    Ok(())
}

/// A random base62 string of `len` characters, for secrets and identifiers.
pub fn random_string(len: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; len];
    fill_random(&mut buf)?;
    // The buffer holds only ASCII alphanumerics, so this never takes the error branch.
    String::from_utf8(buf).map_err(|e| RandomError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_pads_with_zero_and_uses_the_documented_order() {
        let mut out = [0u8; 6];
        encode_padded(0, &mut out);
        assert_eq!(&out, b"000000");
        encode_padded(61, &mut out);
        assert_eq!(&out, b"00000z");
        encode_padded(62, &mut out);
        assert_eq!(&out, b"000010");
        encode_padded(u64::from(u32::MAX), &mut out);
        assert_eq!(&out, b"4gfFC3");
    }

    #[test]
    fn all_base62_refuses_any_single_foreign_byte_anywhere() {
        assert!(all_base62(b""));
        assert!(all_base62(ALPHABET));
        for b in 0..=255u8 {
            assert_eq!(all_base62(&[b]), ALPHABET.contains(&b), "byte {b}");
            for at in [0, 31, 48] {
                let mut s = [b'a'; 49];
                s[at] = b;
                assert_eq!(all_base62(&s), ALPHABET.contains(&b), "byte {b} at {at}");
            }
        }
    }

    #[test]
    fn random_strings_use_only_the_alphabet_and_differ() {
        let a = random_string(43).unwrap();
        let b = random_string(43).unwrap();
        assert_eq!(a.len(), 43);
        assert!(a.bytes().all(is_base62));
        assert_ne!(a, b);
    }

    #[test]
    fn random_characters_cover_the_whole_alphabet() {
        let s = random_string(62 * 200).unwrap();
        for c in ALPHABET {
            assert!(s.as_bytes().contains(c), "character {} never drawn", *c as char);
        }
    }
}
