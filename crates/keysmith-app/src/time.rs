//! Time in Keysmith: Unix milliseconds (UTC) in the store and in every action, RFC 3339
//! on the wire. The durations here are the only definitions of a day or an hour.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const SECOND_MS: i64 = 1000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// `ms` as RFC 3339 in UTC (`2026-11-26T19:00:00.123Z`).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// An RFC 3339 time as Unix milliseconds; `None` when it is not one, or out of range.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_and_rfc3339_go_both_ways() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_183_600_123), "2025-11-26T19:00:00.123Z");
        assert_eq!(parse_rfc3339("2025-11-26T19:00:00.123Z"), Some(1_764_183_600_123));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(DAY_MS, 86_400_000);
    }
}
