//! What a key may do at most: its scope (docs/DESIGN.md §3, "Scopes").
//!
//! A scope narrows the owner's power and never adds to it: what a key may do is what
//! its owner may do (the permission table in [`crate::policy`]) *and* what its scope
//! allows. Scopes are ordered, each including the one before:
//!
//! | scope   | may                                                                 |
//! |---------|---------------------------------------------------------------------|
//! | `read`  | read everything the owner may read; change nothing                  |
//! | `write` | also create, rename, rotate and delete the owner's *own* keys       |
//! | `admin` | the owner's full power: other principals' keys, members, teams, service accounts, settings |
//!
//! Keys made before scopes existed, and keys made without choosing one, are `admin`:
//! today's behaviour. A session (the web interface) always acts with `admin`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum KeyScope {
    Read,
    Write,
    #[default]
    Admin,
}

impl KeyScope {
    pub const ALL: [KeyScope; 3] = [Self::Read, Self::Write, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// Whether a key of this scope may do what needs `needed`.
    pub fn includes(self, needed: KeyScope) -> bool {
        self >= needed
    }

    /// Every scope this one includes, comma-separated, as forward auth's
    /// `X-Keysmith-Scopes` header names them: an upstream checks for the one it needs
    /// without knowing their order.
    pub const fn granted(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "read,write",
            Self::Admin => "read,write,admin",
        }
    }
}

impl fmt::Display for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scope_includes_the_narrower_ones_and_no_wider_one() {
        use KeyScope::*;
        assert!(Admin.includes(Write) && Admin.includes(Read) && Admin.includes(Admin));
        assert!(Write.includes(Read) && Write.includes(Write) && !Write.includes(Admin));
        assert!(Read.includes(Read) && !Read.includes(Write) && !Read.includes(Admin));
    }

    #[test]
    fn names_round_trip_and_the_default_is_todays_full_power() {
        for scope in KeyScope::ALL {
            assert_eq!(KeyScope::parse(scope.as_str()), Some(scope));
            assert!(scope.granted().split(',').any(|s| s == scope.as_str()));
            assert_eq!(scope.granted().split(',').count(), scope as usize + 1);
        }
        assert_eq!(KeyScope::default(), KeyScope::Admin);
        assert_eq!(KeyScope::parse("Admin"), None);
        assert_eq!(KeyScope::parse(""), None);
    }
}
