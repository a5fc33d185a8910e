//! The typed inputs of actions that doors parse from what they receive (JSON, a form,
//! GraphQL arguments), with one message per rule: every door refuses the same input in
//! the same words, and an action cannot be called with a value no rule has checked.

use crate::error::{AppError, Result};
use keysmith_core::role::{OrgRole, TeamRole};
use keysmith_core::{EntityName, Networks};

/// The longest email address kept, in bytes (RFC 5321's path limit less its brackets).
pub const MAX_EMAIL_BYTES: usize = 254;

/// The name of a user, service account or team; `label` names it in the message
/// ("username: the name is empty").
pub fn entity_name(field: &'static str, label: &str, raw: &str) -> Result<EntityName> {
    EntityName::parse(raw).map_err(|e| AppError::invalid(field, format!("{label}: {e}")))
}

/// A network allowlist given as a list of CIDR blocks (or bare addresses); an empty
/// list is `None`: no restriction.
pub fn networks<S: AsRef<str>>(field: &'static str, items: &[S]) -> Result<Option<Networks>> {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    if items.iter().all(|i| i.trim().is_empty()) {
        return Ok(None);
    }
    if items.len() > keysmith_core::networks::MAX_NETWORKS {
        return Err(AppError::invalid(
            field,
            format!("in {field}, {}", keysmith_core::networks::NetworksError::Count),
        ));
    }
    Networks::parse(&items.join(","))
        .map(Some)
        .map_err(|e| AppError::invalid(field, format!("in {field}, {e}")))
}

/// An organization role: `admin` or `member`.
pub fn org_role(raw: &str) -> Result<OrgRole> {
    OrgRole::parse(raw).ok_or_else(|| bad_role(raw))
}

/// A team role: `admin` or `member`.
pub fn team_role(raw: &str) -> Result<TeamRole> {
    TeamRole::parse(raw).ok_or_else(|| bad_role(raw))
}

fn bad_role(raw: &str) -> AppError {
    AppError::invalid("role", format!("role must be `admin` or `member`, not `{raw}`"))
}

/// An email address as Keysmith keeps it: trimmed, with an `@`, at most
/// [`MAX_EMAIL_BYTES`] bytes. Keysmith sends no mail; the address is a second name to
/// sign in with and the source of a name for users invited by email (W&B's SDK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim();
        if !email.contains('@') || email.len() > MAX_EMAIL_BYTES {
            return Err(AppError::invalid(
                "email",
                "email must be an address such as ada@example.com",
            ));
        }
        Ok(Self(email.to_owned()))
    }

    /// An optional address: absent or blank is none.
    pub fn parse_optional(raw: Option<&str>) -> Result<Option<Self>> {
        match raw.map(str::trim).filter(|e| !e.is_empty()) {
            Some(email) => Self::parse(email).map(Some),
            None => Ok(None),
        }
    }

    /// What comes before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_needs_an_at_sign_and_at_most_254_bytes() {
        assert_eq!(Email::parse(" ada@example.com ").unwrap().as_str(), "ada@example.com");
        assert_eq!(Email::parse("ada@example.com").unwrap().local_part(), "ada");
        let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_BYTES - 12));
        assert_eq!(long.len(), MAX_EMAIL_BYTES);
        assert!(Email::parse(&long).is_ok());
        let too_long = format!("a{long}");
        for bad in ["not-an-address", "", too_long.as_str()] {
            assert!(
                matches!(Email::parse(bad), Err(AppError::Invalid { field: "email", .. })),
                "{bad}"
            );
        }
        assert_eq!(Email::parse_optional(Some("  ")).unwrap(), None);
        assert_eq!(Email::parse_optional(None).unwrap(), None);
        assert!(Email::parse_optional(Some("nope")).is_err());
    }

    #[test]
    fn names_and_roles_are_refused_in_the_same_words_everywhere() {
        assert_eq!(
            entity_name("username", "username", "bad name").unwrap_err().to_string(),
            "username: the name may contain only letters, digits, `.`, `_` and `-`, and must start with a letter or digit"
        );
        assert_eq!(org_role("admin").unwrap(), OrgRole::Admin);
        assert_eq!(team_role("member").unwrap(), TeamRole::Member);
        assert_eq!(
            org_role("owner").unwrap_err().to_string(),
            "role must be `admin` or `member`, not `owner`"
        );
    }
}
