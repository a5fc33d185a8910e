//! Names people give to things, parsed once at the edge.

use std::fmt;

/// The longest key name, in characters, after trimming.
pub const MAX_KEY_NAME_CHARS: usize = 128;

/// A key's descriptive name: 1 to 128 characters after trimming surrounding
/// whitespace, without control characters. Names need not be unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty; give the key a descriptive name, such as where it is used")]
    Empty,
    #[error("the name has {0} characters; at most 128 are allowed")]
    TooLong(usize),
    #[error("the name contains control characters")]
    ControlCharacters,
}

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        let chars = name.chars().count();
        if chars > MAX_KEY_NAME_CHARS {
            return Err(NameError::TooLong(chars));
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacters);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(
            KeyName::parse("  ci runner ").unwrap().as_str(),
            "ci runner"
        );
        assert_eq!(KeyName::parse("   "), Err(NameError::Empty));
        assert!(
            KeyName::parse(&"é".repeat(128)).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            KeyName::parse(&"a".repeat(129)),
            Err(NameError::TooLong(129))
        );
        assert_eq!(KeyName::parse("a\u{0}b"), Err(NameError::ControlCharacters));
    }
}
