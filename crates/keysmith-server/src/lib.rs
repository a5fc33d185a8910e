//! Keysmith's HTTP server: the REST API under `/api/v1`, authentication by API key or
//! session, and the server's lifecycle.
//!
//! Handlers only extract, call the store or the domain, and map errors to
//! [`ApiError`]; authentication happens once, in the [`auth::Principal`] extractor.
//! [`router`] builds the whole application without a socket, so tests drive it with
//! `oneshot`; [`run`] binds it.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access;
pub mod auth;
pub mod cache;
pub mod config;
pub mod connection;
mod data_dir;
pub mod email;
mod error;
pub mod federation;
mod graphql;
mod handoff;
mod json;
pub mod leak;
pub mod metrics;
mod openapi;
mod path;
mod routes;
mod server;
mod state;
mod timestamp;
pub mod tls;
mod web;
pub mod webhooks;

pub use config::{Config, ConfigError, ConfigOverrides};
pub use connection::Connections;
pub use error::ApiError;
pub use keysmith_app::time::parse_rfc3339;
pub use keysmith_app::{
    Clock, ManualClock, SystemClock, audit_chain, audit_log, clock, operator, sign_in_throttle, usage,
};
pub use openapi::openapi_document;
pub use routes::audit_log::export_line as audit_export_line;
pub use routes::router;
pub use server::{RunError, bootstrap, run};
pub use state::{AppState, ServerSecret, Settings};
