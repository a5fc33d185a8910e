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

/// The name of a user, service account, team or organization: 1 to 64 characters of
/// letters, digits, `.`, `_` and `-`, starting with a letter or digit. W&B calls these
/// entities; the SDK puts them in URLs and shell commands, so they stay plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityName(String);

pub const MAX_ENTITY_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityNameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name has {0} characters; at most 64 are allowed")]
    TooLong(usize),
    #[error("the name may contain only letters, digits, `.`, `_` and `-`, and must start with a letter or digit")]
    BadCharacters,
}

impl EntityName {
    pub fn parse(raw: &str) -> Result<Self, EntityNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(EntityNameError::Empty);
        }
        if name.len() > MAX_ENTITY_NAME_CHARS {
            return Err(EntityNameError::TooLong(name.chars().count()));
        }
        let mut bytes = name.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
        if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(EntityNameError::BadCharacters);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Password rules: 12 to 1024 characters. Length is what makes a password hard to
/// guess; composition rules only make it hard to remember.
pub fn check_password(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < 12 {
        return Err("the password must have at least 12 characters");
    }
    if n > 1024 {
        return Err("the password must have at most 1024 characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_names_are_plain() {
        assert_eq!(EntityName::parse(" ml-team_2.0 ").unwrap().as_str(), "ml-team_2.0");
        assert_eq!(EntityName::parse(""), Err(EntityNameError::Empty));
        assert_eq!(EntityName::parse("-lead"), Err(EntityNameError::BadCharacters));
        assert_eq!(EntityName::parse("a b"), Err(EntityNameError::BadCharacters));
        assert_eq!(EntityName::parse("é"), Err(EntityNameError::BadCharacters));
        assert!(EntityName::parse(&"a".repeat(64)).is_ok());
        assert!(matches!(
            EntityName::parse(&"a".repeat(65)),
            Err(EntityNameError::TooLong(65))
        ));
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert!(check_password("short").is_err());
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(KeyName::parse("  ci runner ").unwrap().as_str(), "ci runner");
        assert_eq!(KeyName::parse("   "), Err(NameError::Empty));
        assert!(KeyName::parse(&"é".repeat(128)).is_ok(), "characters, not bytes");
        assert_eq!(KeyName::parse(&"a".repeat(129)), Err(NameError::TooLong(129)));
        assert_eq!(KeyName::parse("a\u{0}b"), Err(NameError::ControlCharacters));
    }
}
