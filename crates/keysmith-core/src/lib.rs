//! Keysmith's pure domain: the API key format, secrets as types, and the rules that
//! do not depend on storage or the network.
//!
//! Nothing here does IO or is async, and time is always passed in as a parameter, so
//! that every rule can be tested without a clock, a database or a sleep.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod base62;
pub mod ids;
pub mod key_format;
pub mod names;
pub mod networks;
pub mod policy;
pub mod role;
pub mod scan;
pub mod scope;
pub mod secret;

pub use base62::RandomError;
pub use ids::{OrgId, TeamId, UserId};
pub use key_format::{
    GeneratedKey, KeyDigest, KeyFormatError, KeyId, KeyPrefix, LegacyKey, PresentedKey, V1Key, generate_legacy,
    generate_v1,
};
pub use names::{EntityName, EntityNameError, KeyName, NameError, check_password};
pub use networks::Networks;
pub use scope::KeyScope;
pub use secret::{PlainKey, SecretString};
