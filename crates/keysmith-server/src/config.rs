//! Server configuration, layered: defaults, then a TOML file (`--config`), then
//! `KEYSMITH_*` environment variables, then command-line flags. An unknown key in the
//! file or the environment is an error that names it, so a typo never silently falls
//! back to a default. Secrets may come from files: `KEYSMITH_ADMIN_PASSWORD_FILE`,
//! `KEYSMITH_DATABASE_URL_FILE`.

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use keysmith_core::{KeyPrefix, SecretString};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variables with the `KEYSMITH_` prefix that are not server settings:
/// the CLI's and the test harness's.
const NOT_SERVER_SETTINGS: &[&str] = &["API_KEY", "HOST", "PG_BINDIR", "CONFIG"];

/// Settings that name a file themselves: `KEYSMITH_TLS_CERT_FILE` sets `tls_cert_file`,
/// it does not read a `tls_cert` setting from a file.
const PATH_SETTINGS: &[&str] = &[
    "server_secret_file",
    "github_secret_scanning_keys_file",
    "tls_cert_file",
    "tls_key_file",
    "smtp_ca_file",
];

/// Settings whose value may be read from a file named by `KEYSMITH_<NAME>_FILE`.
const FILE_SECRETS: &[&str] = &["admin_password", "database_url", "smtp_password"];

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on: `IP:port`, or `host:port` resolved at start.
    #[serde(deserialize_with = "deserialize_listen")]
    pub listen: SocketAddr,
    /// Where the embedded SQLite database lives, when no `database_url` is given.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; default: SQLite in `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Prefix of new keys. Changing it affects only keys created afterwards.
    pub key_prefix: String,
    /// Name of the organization created on first start.
    pub org_name: String,
    /// Password of the `admin` user created on first start; generated if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<String>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `keysmith_server=debug`.
    pub log_level: String,
    /// How long a sign-in session lasts.
    pub session_ttl_hours: u32,
    /// Mark the session cookie `Secure`. Set when clients reach Keysmith over HTTPS
    /// (directly or through a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// How often last-used times are written to the database.
    pub usage_flush_seconds: u32,
    /// The file holding the server's secret (from which webhook signing secrets are
    /// derived); default `<data_dir>/server-secret`, created on first start. Replicas
    /// must share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_secret_file: Option<PathBuf>,
    /// GitHub's secret scanning public keys, as GitHub publishes them at
    /// `https://api.github.com/meta/public_keys/secret_scanning`; unset: the
    /// secret scanning endpoint is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_secret_scanning_keys_file: Option<PathBuf>,
    /// Keys the verification cache holds at most (about 150 bytes each); 0 turns the
    /// cache off.
    pub cache_max_keys: usize,
    /// How long a cached key is trusted before it is read again, whatever else
    /// happens: the last resort behind write-through and fan-out.
    pub cache_max_age_seconds: u32,
    /// Failed key verifications allowed per client address per minute, after which the
    /// address gets 429 until the minute ends (an IPv6 /64 counts as one address);
    /// 0 turns the limit off. Keys in steady use are not held back.
    pub key_failures_per_minute: u32,
    /// Exposed-key reports (`revoke-exposed`, API and web page) accepted per client
    /// address per minute, whether or not the key existed, after which the address
    /// gets 429 until the minute ends (an IPv6 /64 counts as one address); 0 turns the
    /// limit off.
    pub exposure_reports_per_minute: u32,
    /// When keys are warned about before they expire (`api_key.expiring`): days
    /// ahead, comma-separated; `off` for never. Each warning is given once per key.
    pub key_expiry_notice_days: String,
    /// Days after a key expires (or its rotation's grace period ends) until it is
    /// removed, audited as `api_key.purged`; 0 keeps expired keys for ever.
    pub expired_key_retention_days: u32,
    /// Days a delivered or failed webhook delivery stays in the delivery log; 0 keeps
    /// them for ever.
    pub delivery_log_retention_days: u32,
    /// The mail server notices are sent through by email: `smtps://host[:465]` (TLS
    /// from the start), `smtp://host[:587]` (STARTTLS, required), or
    /// `smtp://127.0.0.1:port?tls=none` (plain text, to this machine only). Unset:
    /// notices go to webhooks only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// The sender of notices, e.g. `Keysmith <keysmith@example.com>`; required with
    /// `smtp_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_username: Option<String>,
    /// Better from a file: `KEYSMITH_SMTP_PASSWORD_FILE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_password: Option<String>,
    /// A PEM certificate to trust for the mail server besides the public roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Comma-separated addresses or CIDR ranges of reverse proxies whose
    /// `X-Forwarded-For` names the client, e.g. `127.0.0.1, 10.0.0.0/8`. Empty: the
    /// peer's address is the client's.
    pub trusted_proxies: String,
    /// PEM certificate chain to serve HTTPS directly; set with `tls_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// This server's address as people's browsers and clients reach it, e.g.
    /// `https://keys.example.com`: the origin of single sign-on's redirect URI, SCIM's
    /// resource locations and invitation links. Unset: the request's `Host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// The directory holding single sign-on client secrets, one file each; an
    /// organization admin names a file in it, never a path. Default:
    /// `<data_dir>/sso-secrets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sso_secrets_dir: Option<PathBuf>,
    /// Single sign-on providers the operator declares (`[[sso_providers]]` in the file):
    /// made to exist at each start, beside those added through the API or web.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sso_providers: Vec<SsoProviderConfig>,
}

/// A single sign-on provider in the configuration file; the fields are the API's
/// (docs/SSO.md), with the organization it is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SsoProviderConfig {
    pub org: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// A file name in `sso_secrets_dir`.
    pub client_secret_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_claim: Option<String>,
    #[serde(default)]
    pub jit: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_rules: Vec<keysmith_app::sso::GroupRule>,
}

impl SsoProviderConfig {
    pub fn to_app(&self) -> keysmith_app::sso::ConfiguredProvider {
        keysmith_app::sso::ConfiguredProvider {
            org: self.org.clone(),
            request: keysmith_app::sso::NewProviderRequest {
                name: self.name.clone(),
                issuer: self.issuer.clone(),
                client_id: self.client_id.clone(),
                client_secret_file: self.client_secret_file.clone(),
                scopes: self.scopes.clone(),
                groups_claim: self.groups_claim.clone(),
                email_claim: self.email_claim.clone(),
                jit: self.jit,
                group_rules: self.group_rules.clone(),
            },
        }
    }
}

/// Redacts the admin password and the database URL (which may hold a password).
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|_| "<redacted>"))
            .field("key_prefix", &self.key_prefix)
            .field("org_name", &self.org_name)
            .field("admin_password", &self.admin_password.as_ref().map(|_| "<redacted>"))
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("session_ttl_hours", &self.session_ttl_hours)
            .field("secure_cookies", &self.secure_cookies)
            .field("usage_flush_seconds", &self.usage_flush_seconds)
            .field("key_failures_per_minute", &self.key_failures_per_minute)
            .field("exposure_reports_per_minute", &self.exposure_reports_per_minute)
            .field("key_expiry_notice_days", &self.key_expiry_notice_days)
            .field("expired_key_retention_days", &self.expired_key_retention_days)
            .field("delivery_log_retention_days", &self.delivery_log_retention_days)
            .field("smtp", &self.smtp())
            .field("trusted_proxies", &self.trusted_proxies)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("public_url", &self.public_url)
            .field("sso_secrets_dir", &self.sso_secrets_dir)
            .field("sso_providers", &self.sso_providers)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            key_prefix: KeyPrefix::DEFAULT.to_owned(),
            org_name: "default".to_owned(),
            admin_password: None,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            session_ttl_hours: 12,
            secure_cookies: false,
            usage_flush_seconds: 30,
            server_secret_file: None,
            github_secret_scanning_keys_file: None,
            cache_max_keys: 100_000,
            cache_max_age_seconds: 60,
            key_failures_per_minute: 60,
            exposure_reports_per_minute: 30,
            key_expiry_notice_days: "7,1".to_owned(),
            expired_key_retention_days: 0,
            delivery_log_retention_days: 0,
            smtp_url: None,
            smtp_from: None,
            smtp_username: None,
            smtp_password: None,
            smtp_ca_file: None,
            trusted_proxies: String::new(),
            tls_cert_file: None,
            tls_key_file: None,
            public_url: None,
            sso_secrets_dir: None,
            sso_providers: Vec::new(),
        }
    }
}

/// Parses a listen address: `IP:port` (`127.0.0.1:8080`, `[::1]:8080`) or
/// `host:port`, resolved now (`localhost:8080`); an IPv4 address is preferred when a
/// name has both, as most people expect `localhost` to mean 127.0.0.1.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    // The messages never repeat the value: settings may come from places that hold
    // secrets, and none is ever echoed.
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((_, port)) = text.rsplit_once(':') else {
        return Err("the address has no port; give host:port or IP:port, e.g. 127.0.0.1:8080 or localhost:8080".into());
    };
    if port.parse::<u16>().is_err() {
        return Err("the port is not a number from 0 to 65535; give host:port, e.g. localhost:8080".into());
    }
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| {
            format!("the host name cannot be resolved ({e}); give an IP address instead, e.g. 127.0.0.1:8080")
        })?
        .collect();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or(resolved.first())
        .copied()
        .ok_or_else(|| "the host name resolves to no address; give an IP address instead, e.g. 127.0.0.1:8080".into())
}

fn deserialize_listen<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_listen(&text).map_err(serde::de::Error::custom)
}

/// What a type error's "expected" says in words a person uses, not Rust's types.
fn expected_in_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
            let max = match expected {
                "u8" => u8::MAX.to_string(),
                "u16" => u16::MAX.to_string(),
                "u32" => u32::MAX.to_string(),
                _ => "a very large number".to_owned(),
            };
            format!("a whole number from 0 to {max}")
        }
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" | "string" => "text".into(),
        other => other.to_owned(),
    }
}

/// A public URL as an origin: http or https, a host, no path, query or credentials (a
/// trailing `/` is dropped).
fn public_origin(text: &str) -> Result<String, String> {
    let bad = |why: &str| format!("public_url `{text}` {why}; write it like https://keys.example.com");
    let url = url::Url::parse(text.trim()).map_err(|_| bad("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("must be an http or https address"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("must be only the scheme, host and port"));
    }
    Ok(url.origin().ascii_serialization())
}

/// Values from command-line flags; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Invalid(String),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

impl Config {
    /// Loads the layers from the process environment.
    pub fn load(file: Option<&Path>, overrides: &ConfigOverrides) -> Result<Self, ConfigError> {
        Self::load_from(file, overrides, std::env::vars())
    }

    /// Loads the layers from the given environment, for tests.
    pub fn load_from(
        file: Option<&Path>,
        overrides: &ConfigOverrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "the config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let mut from_env: Vec<(String, String)> = Vec::new();
        let mut from_files = Dict::new();
        for (name, value) in env {
            let Some(setting) = name.strip_prefix("KEYSMITH_") else {
                continue;
            };
            if NOT_SERVER_SETTINGS.contains(&setting) {
                continue;
            }
            let is_path_setting = PATH_SETTINGS.contains(&setting.to_ascii_lowercase().as_str());
            if let Some(secret) = setting.strip_suffix("_FILE").filter(|_| !is_path_setting) {
                let key = secret.to_ascii_lowercase();
                if !FILE_SECRETS.contains(&key.as_str()) {
                    return Err(ConfigError::Invalid(format!(
                        "unknown setting `{key}` in environment variable {name}; only {} may come from files",
                        FILE_SECRETS.join(", ")
                    )));
                }
                let text = std::fs::read_to_string(&value).map_err(|source| ConfigError::Read {
                    path: value.clone(),
                    source,
                })?;
                let text = text.trim_end_matches(['\n', '\r']).to_owned();
                from_files.insert(key, text.into());
                continue;
            }
            from_env.push((setting.to_ascii_lowercase(), value));
        }
        figment = figment
            .merge(EnvPairs(from_env))
            .merge(Serialized::defaults(from_files))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().map_err(|e| ConfigError::Invalid(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        KeyPrefix::parse(&self.key_prefix).map_err(|_| {
            ConfigError::Invalid(format!(
                "key_prefix `{}` must be 1 to 32 ASCII letters or digits (no `_` or `-`)",
                self.key_prefix
            ))
        })?;
        if self.session_ttl_hours == 0 {
            return Err(ConfigError::Invalid("session_ttl_hours must be at least 1".into()));
        }
        if self.usage_flush_seconds == 0 || self.usage_flush_seconds > 60 {
            return Err(ConfigError::Invalid(
                "usage_flush_seconds must be between 1 and 60, so last-used times stay accurate to a minute".into(),
            ));
        }
        if self.admin_password.as_ref().is_some_and(|p| p.chars().count() < 12) {
            return Err(ConfigError::Invalid(
                "the admin password must have at least 12 characters".into(),
            ));
        }
        crate::auth::source::TrustedProxies::parse(&self.trusted_proxies).map_err(ConfigError::Invalid)?;
        self.notices()?;
        self.mailer()?;
        for (name, days) in [
            ("expired_key_retention_days", self.expired_key_retention_days),
            ("delivery_log_retention_days", self.delivery_log_retention_days),
        ] {
            if days > 36_500 {
                return Err(ConfigError::Invalid(format!(
                    "{name} is at most 36500 days (0 keeps for ever)"
                )));
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "set both tls_cert_file and tls_key_file to serve HTTPS, or neither".into(),
            ));
        }
        if self.org_name.trim().is_empty() {
            return Err(ConfigError::Invalid("org_name must not be empty".into()));
        }
        if let Some(url) = &self.public_url {
            public_origin(url).map_err(ConfigError::Invalid)?;
        }
        Ok(())
    }

    /// `public_url` as an origin (`https://host[:port]`), checked.
    pub fn public_origin(&self) -> Option<String> {
        self.public_url.as_deref().and_then(|u| public_origin(u).ok())
    }

    /// The database to open: `database_url`, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("keysmith.db").display()),
        }
    }

    /// The `smtp_*` settings, if email is set up.
    pub fn smtp(&self) -> Option<crate::email::SmtpSettings> {
        self.smtp_url.as_ref().map(|url| crate::email::SmtpSettings {
            url: url.clone(),
            from: self.smtp_from.clone().unwrap_or_default(),
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            ca_file: self.smtp_ca_file.clone(),
        })
    }

    /// The SMTP client notices are sent with, checked; `None` when `smtp_url` is unset.
    pub fn mailer(&self) -> Result<Option<crate::email::Mailer>, ConfigError> {
        let Some(smtp) = self.smtp() else {
            let set = [
                ("smtp_from", self.smtp_from.is_some()),
                ("smtp_username", self.smtp_username.is_some()),
                ("smtp_password", self.smtp_password.is_some()),
                ("smtp_ca_file", self.smtp_ca_file.is_some()),
            ];
            if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
                return Err(ConfigError::Invalid(format!(
                    "{name} is set but smtp_url is not: set smtp_url to send notices by email"
                )));
            }
            return Ok(None);
        };
        if self.smtp_from.is_none() {
            return Err(ConfigError::Invalid(
                "smtp_url is set but smtp_from is not: set the sender, e.g. `Keysmith <keysmith@example.com>`".into(),
            ));
        }
        crate::email::Mailer::new(&smtp).map(Some).map_err(ConfigError::Invalid)
    }

    /// `key_expiry_notice_days`, checked.
    pub fn notices(&self) -> Result<keysmith_app::notices::NoticeSettings, ConfigError> {
        keysmith_app::notices::NoticeSettings::parse(&self.key_expiry_notice_days)
            .map_err(|e| ConfigError::Invalid(format!("key_expiry_notice_days: {e}")))
    }

    pub fn key_prefix(&self) -> KeyPrefix {
        KeyPrefix::parse(&self.key_prefix).unwrap_or_default()
    }

    pub fn admin_password(&self) -> Option<SecretString> {
        self.admin_password.clone().map(SecretString::new)
    }
}

/// `KEYSMITH_*` variables, already stripped of the prefix and lowercased. figment's own
/// `Env` reads the process environment; this reads a list, so loading stays testable.
struct EnvPairs(Vec<(String, String)>);

const ENV_SOURCE: &str = "environment";

impl Provider for EnvPairs {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.0 {
            // Lenient parsing as figment's Env does: "30" is a number, "true" a bool.
            let parsed: Value = value.parse().unwrap_or_else(|_| Value::from(value.clone()));
            dict.insert(key.clone(), parsed);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Figment's error, without the value of any setting (it could be a secret).
fn describe(err: figment::Error) -> String {
    use figment::error::Kind;
    err.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let field = match &e.kind {
                Kind::UnknownField(field, _) => field.clone(),
                _ => key.clone(),
            };
            let source = match e.metadata.as_ref() {
                Some(m) if m.name == ENV_SOURCE => {
                    format!(" (environment variable KEYSMITH_{})", field.to_ascii_uppercase())
                }
                Some(m) => match &m.source {
                    Some(s) => format!(" (in {s})"),
                    None => format!(" (from {})", m.name),
                },
                None => String::new(),
            };
            // Never print the value: `Actual` would quote it, and it may be a secret.
            match &e.kind {
                Kind::UnknownField(field, _) => format!("unknown setting `{field}`{source}"),
                Kind::InvalidType(_, expected) => {
                    format!("setting `{key}` must be {}{source}", expected_in_words(expected))
                }
                Kind::InvalidValue(_, expected) => {
                    format!("setting `{key}` must be {}{source}", expected_in_words(expected))
                }
                Kind::UnknownVariant(_, expected) => {
                    format!("setting `{key}` must be one of: {}{source}", expected.join(", "))
                }
                Kind::Message(m) if !key.is_empty() => format!("setting `{key}`: {m}{source}"),
                other => format!("{other}{source}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_listen_on_loopback_8080_with_sqlite_in_data() {
        let c = Config::load_from(None, &ConfigOverrides::default(), env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://data/keysmith.db");
        assert_eq!(c.key_prefix, "wandb");
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\nkey_prefix = \"acme\"\norg_name = \"from-file\"\n",
        )
        .unwrap();
        let flags = ConfigOverrides {
            listen: Some("127.0.0.1:3000".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::load_from(
            Some(&file),
            &flags,
            env(&[
                ("KEYSMITH_LISTEN", "127.0.0.1:2000"),
                ("KEYSMITH_ORG_NAME", "from-env"),
                ("HOME", "/x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000", "flags win");
        assert_eq!(c.org_name, "from-env", "env beats file");
        assert_eq!(c.key_prefix, "acme", "file beats defaults");
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let err = Config::load_from(None, &ConfigOverrides::default(), env(&[("KEYSMITH_LISTN", "x")])).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(&file, "data_dri = \"/tmp\"\n").unwrap();
        let err = Config::load_from(Some(&file), &ConfigOverrides::default(), env(&[])).unwrap_err();
        assert!(err.to_string().contains("data_dri"), "{err}");
    }

    #[test]
    fn client_variables_are_not_mistaken_for_settings() {
        Config::load_from(
            None,
            &ConfigOverrides::default(),
            env(&[
                ("KEYSMITH_API_KEY", "x"),
                ("KEYSMITH_HOST", "http://h"),
                ("KEYSMITH_PG_BINDIR", "/p"),
            ]),
        )
        .unwrap();
    }

    #[test]
    fn secrets_come_from_files_and_never_appear_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "correct horse battery staple\n").unwrap();
        let c = Config::load_from(
            None,
            &ConfigOverrides::default(),
            env(&[("KEYSMITH_ADMIN_PASSWORD_FILE", file.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(c.admin_password().unwrap().expose(), "correct horse battery staple");
        let err = Config::load_from(
            None,
            &ConfigOverrides::default(),
            env(&[("KEYSMITH_ADMIN_PASSWORD", "shortpw")]),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("shortpw"), "{err}");
        let ok = Config::load_from(
            None,
            &ConfigOverrides::default(),
            env(&[("KEYSMITH_ADMIN_PASSWORD", "long-enough-secret")]),
        )
        .unwrap();
        assert!(
            !format!("{ok:?}").contains("long-enough-secret"),
            "Debug shows the password"
        );
        let err = Config::load_from(
            None,
            &ConfigOverrides::default(),
            env(&[("KEYSMITH_LISTEN", "my-secret-value")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        assert!(!err.to_string().contains("my-secret-value"), "{err}");
    }

    #[test]
    fn the_public_url_is_an_origin_and_a_bad_one_is_explained() {
        let load =
            |url: &str| Config::load_from(None, &ConfigOverrides::default(), env(&[("KEYSMITH_PUBLIC_URL", url)]));
        for (given, origin) in [
            ("https://keys.example.com", "https://keys.example.com"),
            ("https://Keys.Example.com/", "https://keys.example.com"),
            ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
        ] {
            assert_eq!(load(given).unwrap().public_origin().as_deref(), Some(origin), "{given}");
        }
        for bad in [
            "keys.example.com",
            "https://keys.example.com/keysmith",
            "ftp://keys.example.com",
            "https://keys.example.com/?a=1",
        ] {
            let err = load(bad).unwrap_err().to_string();
            assert!(
                err.contains("public_url") && err.contains("https://keys.example.com"),
                "{bad}: {err}"
            );
        }
        assert_eq!(Config::default().public_origin(), None);
    }

    #[test]
    fn proxies_and_tls_settings_are_checked() {
        let load = |pairs: &[(&str, &str)]| Config::load_from(None, &ConfigOverrides::default(), env(pairs));
        let c = load(&[("KEYSMITH_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]).unwrap();
        assert_eq!(c.trusted_proxies, "127.0.0.1, 10.0.0.0/8");
        assert_eq!(c.key_failures_per_minute, 60);
        assert_eq!(c.exposure_reports_per_minute, 30);
        let err = load(&[("KEYSMITH_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`proxy.local`"), "{err}");
        let err = load(&[("KEYSMITH_TLS_CERT_FILE", "/etc/cert.pem")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls_key_file"), "{err}");
        let c = load(&[
            ("KEYSMITH_TLS_CERT_FILE", "/etc/cert.pem"),
            ("KEYSMITH_TLS_KEY_FILE", "/etc/key.pem"),
            ("KEYSMITH_KEY_FAILURES_PER_MINUTE", "0"),
            ("KEYSMITH_EXPOSURE_REPORTS_PER_MINUTE", "0"),
        ])
        .unwrap();
        assert_eq!(c.key_failures_per_minute, 0);
        assert_eq!(c.exposure_reports_per_minute, 0);
        assert!(c.tls_cert_file.is_some());
        let c = load(&[("KEYSMITH_SERVER_SECRET_FILE", "/var/lib/keysmith/secret")]).unwrap();
        assert_eq!(c.server_secret_file.unwrap().to_str(), Some("/var/lib/keysmith/secret"));
    }

    #[test]
    fn email_needs_a_url_and_a_sender_and_keeps_its_password_to_itself() {
        let load = |pairs: &[(&str, &str)]| Config::load_from(None, &ConfigOverrides::default(), env(pairs));
        assert!(load(&[]).unwrap().mailer().unwrap().is_none(), "off by default");
        let err = load(&[("KEYSMITH_SMTP_URL", "smtp://mail.example.com")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("smtp_from"), "{err}");
        let err = load(&[("KEYSMITH_SMTP_FROM", "k@example.com")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("smtp_url"), "{err}");
        let err = load(&[
            ("KEYSMITH_SMTP_URL", "smtp://mail.example.com?tls=none"),
            ("KEYSMITH_SMTP_FROM", "k@example.com"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("only to this machine"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "mail-secret-123\n").unwrap();
        let c = load(&[
            ("KEYSMITH_SMTP_URL", "smtps://mail.example.com"),
            ("KEYSMITH_SMTP_FROM", "Keysmith <k@example.com>"),
            ("KEYSMITH_SMTP_USERNAME", "keysmith"),
            ("KEYSMITH_SMTP_PASSWORD_FILE", file.to_str().unwrap()),
        ])
        .unwrap();
        assert!(c.mailer().unwrap().is_some());
        assert_eq!(c.smtp_password.as_deref(), Some("mail-secret-123"));
        assert!(!format!("{c:?}").contains("mail-secret-123"), "{c:?}");
    }

    #[test]
    fn expiry_warnings_are_days_ahead_or_off() {
        let load = |pairs: &[(&str, &str)]| Config::load_from(None, &ConfigOverrides::default(), env(pairs));
        assert_eq!(load(&[]).unwrap().notices().unwrap().expiry_lead_days(), [1, 7]);
        let c = load(&[("KEYSMITH_KEY_EXPIRY_NOTICE_DAYS", "30,7,1")]).unwrap();
        assert_eq!(c.notices().unwrap().expiry_lead_days(), [1, 7, 30]);
        let c = load(&[("KEYSMITH_KEY_EXPIRY_NOTICE_DAYS", "off")]).unwrap();
        assert!(c.notices().unwrap().expiry_lead_days().is_empty());
        let err = load(&[("KEYSMITH_KEY_EXPIRY_NOTICE_DAYS", "7,0")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key_expiry_notice_days") && err.contains("`0`"), "{err}");
    }

    #[test]
    fn listen_takes_host_names_and_explains_bad_addresses() {
        let load = |v: &str| Config::load_from(None, &ConfigOverrides::default(), env(&[("KEYSMITH_LISTEN", v)]));
        assert_eq!(load("localhost:8085").unwrap().listen.to_string(), "127.0.0.1:8085");
        assert_eq!(load("[::1]:8085").unwrap().listen.to_string(), "[::1]:8085");
        let err = load("localhost").unwrap_err().to_string();
        assert!(err.contains("has no port"), "{err}");
        let err = load("localhost:http").unwrap_err().to_string();
        assert!(err.contains("the port is not a number"), "{err}");
        let err = load("no-such-host.invalid:80").unwrap_err().to_string();
        assert!(err.contains("give an IP address instead"), "{err}");
        assert_eq!(parse_listen("localhost:0").unwrap().to_string(), "127.0.0.1:0");
    }

    #[test]
    fn type_errors_say_what_to_write_not_rust_types() {
        let load = |k: &str, v: &str| Config::load_from(None, &ConfigOverrides::default(), env(&[(k, v)]));
        let err = load("KEYSMITH_SESSION_TTL_HOURS", "twelve").unwrap_err().to_string();
        assert!(err.contains("must be a whole number from 0 to 4294967295"), "{err}");
        assert!(!err.contains("u32"), "{err}");
        let err = load("KEYSMITH_SESSION_TTL_HOURS", "-3").unwrap_err().to_string();
        assert!(err.contains("a whole number"), "{err}");
        let err = load("KEYSMITH_SECURE_COOKIES", "yes please").unwrap_err().to_string();
        assert!(err.contains("must be true or false"), "{err}");
    }

    #[test]
    fn a_bad_prefix_is_explained() {
        let err = Config::load_from(
            None,
            &ConfigOverrides::default(),
            env(&[("KEYSMITH_KEY_PREFIX", "my_co")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("key_prefix"), "{err}");
    }
}
