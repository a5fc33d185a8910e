//! Secrets as types: their `Debug` and `Display` never show the value, and the memory
//! is zeroed when they are dropped. A secret is read with [`SecretString::expose`],
//! which makes every place that touches the plaintext easy to find.

use std::fmt;
use zeroize::Zeroizing;

/// A secret string: a password, a session token, a key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The plaintext. Call it only where the secret is hashed, compared, or written
    /// to the one place that must carry it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The full plaintext of an API key, as generated. It exists between generation and
/// the one response that shows it to its owner.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(SecretString);

impl PlainKey {
    pub(crate) fn new(value: String) -> Self {
        Self(SecretString::new(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainKey(<redacted>)")
    }
}

impl fmt::Display for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::new("hunter2-very-secret".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        let k = PlainKey::new("wandb_v1_abc".into());
        assert!(!format!("{k:?} {k}").contains("abc"));
        assert_eq!(k.expose(), "wandb_v1_abc");
    }
}
