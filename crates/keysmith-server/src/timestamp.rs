//! Times on the wire are RFC 3339 in UTC; in the store they are Unix milliseconds.
//! The conversion lives in the application (`keysmith_app::time`).

pub use keysmith_app::time::rfc3339;
