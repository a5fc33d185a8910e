//! Verification's first steps, the same for every door and for leak response: parsing
//! a presented string (no allocation, never panics; a mistyped or random string is
//! refused here by its checksum, without touching the database), looking up the key
//! it names, and why a key is refused. The cached hot path that answers requests is
//! still the server's (`keysmith-server/src/auth/verify.rs`; docs/DESIGN.md §5).

use crate::App;
use crate::error::Result;
use keysmith_core::{KeyFormatError, KeyId, PresentedKey};
use keysmith_store::AuthRecord;

/// Why a key was refused. The client sees `invalid_api_key`, or `api_key_expired` for
/// a genuine key past its expiry (only its holder can present it, so telling them
/// reveals nothing); the reason is for logs and metrics, and names no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    BadChecksum,
    Unknown,
    WrongSecret,
    OwnerInactive,
    Expired,
}

impl Refusal {
    /// The name in logs and the verification metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadChecksum => "bad_checksum",
            Self::Unknown => "unknown",
            Self::WrongSecret => "wrong_secret",
            Self::OwnerInactive => "owner_inactive",
            Self::Expired => "expired",
        }
    }
}

/// Parses a presented key; a mistyped or random string is refused here.
pub fn parse(presented: &str) -> std::result::Result<PresentedKey<'_>, Refusal> {
    PresentedKey::parse(presented).map_err(|e| match e {
        KeyFormatError::BadChecksum => Refusal::BadChecksum,
        _ => Refusal::Malformed,
    })
}

/// What a presented string came to in the store.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A genuine key (the right secret for a known key ID, or a known legacy key),
    /// whatever its state.
    Genuine(AuthRecord),
    Refused(Refusal),
}

/// The stored record of a genuine key, or why the string is not one. Reads the store,
/// never the cache.
pub async fn lookup(app: &App, presented: &str) -> Result<Lookup> {
    let parsed = match parse(presented) {
        Ok(p) => p,
        Err(refusal) => return Ok(Lookup::Refused(refusal)),
    };
    let digest = parsed.digest();
    let record = match parsed {
        PresentedKey::V1(v1) => app.store.find_key_for_auth(&KeyId::from(v1)).await?,
        PresentedKey::Legacy(_) => app.store.find_legacy_key_for_auth(&digest).await?,
    };
    let Some(record) = record else {
        return Ok(Lookup::Refused(Refusal::Unknown));
    };
    if !record.digest.ct_eq(&digest) {
        return Ok(Lookup::Refused(Refusal::WrongSecret));
    }
    Ok(Lookup::Genuine(record))
}

/// What failure limits count by: the address, or for IPv6 its /64 (one host commonly
/// holds a whole /64).
pub fn limit_key(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::limit_key;

    #[test]
    fn failures_count_per_address_and_per_ipv6_64() {
        assert_eq!(limit_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(limit_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(limit_key("2001:db8:1:2:bbbb::7"), "2001:db8:1:2::/64");
        assert_ne!(limit_key("2001:db8:1:3::1"), limit_key("2001:db8:1:2::1"));
        assert_eq!(limit_key("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
        assert_eq!(limit_key("unknown"), "unknown");
    }
}
