//! The server's lifecycle: open the store, create the first admin on first start,
//! serve until told to stop, and flush what is still in memory on the way out.

use crate::auth::password::{generate_password, hash_password};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::ApiError;
use crate::leak::github::GitHubKeys;
use crate::state::{AppState, ServerSecret, Settings};
use base64::Engine;
use keysmith_core::SecretString;
use keysmith_core::role::PrincipalKind;
use keysmith_store::{NewUser, Store, StoreError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The username of the first admin.
pub const FIRST_ADMIN: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The data directory or the database file cannot be used; the text says which
    /// file, why, and what to do.
    #[error("{0}")]
    Storage(String),
    /// Another server holds the SQLite database.
    #[error("{0}")]
    Locked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {error}; is another server using the port? choose another with --listen")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
    #[error("cannot create the first admin: {0}")]
    Bootstrap(String),
    #[error("the server secret file {path}: {detail}")]
    ServerSecret { path: String, detail: String },
    #[error("{0}")]
    Setting(String),
    #[error("github_secret_scanning_keys_file {path}: {detail}")]
    GitHubKeys { path: String, detail: String },
}

/// What first start created.
pub struct Bootstrapped {
    pub org_name: String,
    pub username: String,
    /// The generated password, when none was configured; shown once, then forgotten.
    pub generated_password: Option<SecretString>,
}

/// On an empty database, creates the first organization and the `admin` user, with
/// the configured password or a generated one. Does nothing on a database with users.
pub async fn bootstrap(
    store: &dyn Store,
    org_name: &str,
    password: Option<SecretString>,
    now: i64,
) -> Result<Option<Bootstrapped>, ApiError> {
    let (password, generated) = match password {
        Some(p) => (p, false),
        None => (generate_password()?, true),
    };
    let hash = hash_password(&password)?;
    let admin = NewUser {
        kind: PrincipalKind::User,
        username: FIRST_ADMIN.into(),
        email: None,
        password_hash: Some(hash),
    };
    Ok(store
        .bootstrap(org_name, admin, now)
        .await?
        .map(|(org, user)| Bootstrapped {
            org_name: org.name,
            username: user.username,
            generated_password: generated.then_some(password),
        }))
}

/// Runs the server until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), RunError> {
    if config.database_url.is_none() {
        create_private_dir(&config.data_dir)?;
    }
    let url = config.database_url();
    // A SQLite database belongs to one server process: hold its lock until we exit.
    let mut lock = match keysmith_store::sqlite_path(&url) {
        Some(path) => {
            crate::data_dir::check_writable(&path).map_err(RunError::Storage)?;
            Some(
                crate::data_dir::DatabaseLock::acquire(&path, &format!("http://{}", config.listen))
                    .map_err(RunError::Locked)?,
            )
        }
        None => None,
    };
    let store = keysmith_store::open(&url).await?;
    store.check_writable().await.map_err(|e| {
        RunError::Storage(match keysmith_store::sqlite_path(&url) {
            Some(path) => format!(
                "the database {} cannot be written: {e}; make it and its directory writable by the user Keysmith runs as",
                path.display()
            ),
            None => format!("the database refuses writes: {e}; point database_url at a primary that accepts writes"),
        })
    })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    tracing::info!(store.backend = store.backend().as_str(), "database ready");

    match bootstrap(
        store.as_ref(),
        &config.org_name,
        config.admin_password(),
        clock.now_ms(),
    )
    .await
    {
        Ok(Some(done)) => announce_first_admin(&done, config.listen),
        Ok(None) => {
            if config.admin_password.is_some() {
                tracing::info!(
                    "the admin password setting is used only on first start; the database already has users"
                );
            }
        }
        Err(e) => return Err(RunError::Bootstrap(e.to_string())),
    }

    let secret_path = config
        .server_secret_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("server-secret"));
    let server_secret = load_server_secret(&secret_path)?;
    let github_keys = match &config.github_secret_scanning_keys_file {
        None => GitHubKeys::default(),
        Some(path) => {
            let err = |detail: String| RunError::GitHubKeys {
                path: path.display().to_string(),
                detail,
            };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            GitHubKeys::from_json(&text).map_err(err)?
        }
    };
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key).map_err(RunError::Setting)?),
        _ => None,
    };
    let trusted_proxies =
        crate::auth::source::TrustedProxies::parse(&config.trusted_proxies).map_err(RunError::Setting)?;
    let mailer = config.mailer().map_err(|e| RunError::Setting(e.to_string()))?;
    let mut notices = config.notices().map_err(|e| RunError::Setting(e.to_string()))?;
    notices.email = mailer.is_some();
    notices.public_origin = config.public_origin();
    let state = AppState::new(
        store.clone(),
        clock,
        Settings {
            key_prefix: config.key_prefix(),
            session_ttl_ms: i64::from(config.session_ttl_hours) * keysmith_app::time::HOUR_MS,
            secure_cookies: config.secure_cookies || tls.is_some(),
            hsts: tls.is_some(),
            key_failures_per_minute: config.key_failures_per_minute,
            exposure_reports_per_minute: config.exposure_reports_per_minute,
            public_origin: config.public_origin(),
            sso_secrets_dir: config
                .sso_secrets_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("sso-secrets")),
            trusted_proxies,
            github_keys,
            server_secret,
            cache_max_keys: config.cache_max_keys,
            cache_max_age_ms: i64::from(config.cache_max_age_seconds) * 1000,
            notices,
            retention: keysmith_app::retention::RetentionSettings {
                expired_key_days: config.expired_key_retention_days,
                delivery_days: config.delivery_log_retention_days,
            },
        },
    );
    let configured: Vec<keysmith_app::sso::ConfiguredProvider> = config
        .sso_providers
        .iter()
        .map(crate::config::SsoProviderConfig::to_app)
        .collect();
    if !configured.is_empty() {
        keysmith_app::sso::apply_configured(&state.app, &configured, state.now())
            .await
            .map_err(|e| RunError::Setting(crate::error::sentence(&format!("sso_providers: {e}"))))?;
    }
    let fanout = state.start_fanout();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| RunError::Bind {
            addr: config.listen,
            error,
        })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    let flusher = tokio::spawn(background_work(
        state.clone(),
        Duration::from_secs(u64::from(config.usage_flush_seconds)),
    ));
    let webhook_worker = tokio::spawn(webhook_work(state.clone()));
    let email_worker = mailer.map(|mailer| tokio::spawn(email_work(state.clone(), mailer)));

    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(lock) = lock.as_mut() {
        lock.record_address(&format!("{scheme}://{addr}"));
    }
    println!("Keysmith is listening on {scheme}://{addr}");
    println!("  sign in:   open {scheme}://{addr}/ in a browser; create keys under User settings");
    println!("  wandb SDK: wandb login --host {scheme}://{addr}  (or WANDB_BASE_URL={scheme}://{addr})");
    println!("  CLI:       keysmith login --host {scheme}://{addr}");
    if let Ok(exe) = std::env::current_exe()
        && exe.components().any(|c| c.as_os_str() == "target")
    {
        // Run from a build (`cargo run`): `keysmith` is this very binary, not yet on
        // PATH. Say where it is and how to install it.
        println!(
            "             (`keysmith` is this program, {}; to have it on your PATH:",
            exe.display()
        );
        println!("             cargo install --locked --path crates/keysmith-cli)");
    }
    tracing::info!(listen.address = %addr, listen.scheme = scheme, "serving");

    let app = crate::connection::Connections::new(state.clone());
    let served = match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
        Some(acceptor) => {
            let listener = crate::tls::TlsListener::new(listener, acceptor).map_err(RunError::Serve)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
    };
    flusher.abort();
    webhook_worker.abort();
    if let Some(worker) = email_worker {
        worker.abort();
    }
    fanout.abort();
    if let Err(e) = state.usage.flush(state.store.as_ref()).await {
        tracing::error!(error.detail = %e, "could not write last-used times at shutdown");
    }
    tracing::info!("stopped");
    served.map_err(RunError::Serve)
}

/// Writes last-used times every `interval`; hourly, drops expired sessions, old
/// emails, and expired keys and deliveries past their retention.
async fn background_work(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_cleanup = Duration::ZERO;
    loop {
        ticker.tick().await;
        if let Err(e) = state.usage.flush(state.store.as_ref()).await {
            tracing::warn!(error.detail = %e, "could not write last-used times; will retry");
        }
        since_cleanup += interval;
        if since_cleanup >= Duration::from_secs(3600) {
            since_cleanup = Duration::ZERO;
            match state.store.delete_expired_sessions(state.now()).await {
                Ok(n) if n > 0 => tracing::info!(sessions.deleted = n, "expired sessions removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error.detail = %e, "could not remove expired sessions"),
            }
            match keysmith_app::retention::purge(&state.app).await {
                Ok(p) if p.keys > 0 || p.deliveries > 0 => {
                    tracing::info!(
                        keys.purged = p.keys,
                        deliveries.purged = p.deliveries,
                        "past their retention: removed"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error.detail = %e, "could not remove what is past its retention"),
            }
            match state.store.purge_emails(state.now() - EMAIL_KEPT_MS).await {
                Ok(n) if n > 0 => tracing::info!(emails.deleted = n, "old sent or failed emails removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error.detail = %e, "could not remove old emails"),
            }
        }
    }
}

/// Every second: audit keys refused for their address, seal new audit entries into the
/// hash chain, queue new events for webhooks and send what is due; every minute: warn about keys that reach a lead time before
/// their expiry; every hour: announce idle keys.
async fn webhook_work(state: AppState) {
    let client = match crate::webhooks::client() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error.detail = %e, "webhooks are off: no HTTP client");
            return;
        }
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        ticker.tick().await;
        if ticks.is_multiple_of(60)
            && let Err(e) = crate::webhooks::announce_expiring(&state).await
        {
            tracing::warn!(error.detail = %e, "could not announce expiring keys");
        }
        if ticks.is_multiple_of(3600)
            && let Err(e) = crate::webhooks::announce_idle(&state).await
        {
            tracing::warn!(error.detail = %e, "could not announce idle keys");
        }
        ticks += 1;
        if let Err(e) = keysmith_app::verification::audit_refused_addresses(&state.app).await {
            tracing::warn!(error.detail = %e, "could not audit keys refused for their address");
        }
        if let Err(e) = keysmith_app::audit_chain::seal(&state.app).await {
            tracing::warn!(error.detail = %e, "could not seal the audit log's new entries");
        }
        if let Err(e) = crate::webhooks::pump(&state).await {
            tracing::warn!(error.detail = %e, "could not queue webhook deliveries");
        }
        if let Err(e) = crate::webhooks::deliver_due(&state, &client).await {
            tracing::warn!(error.detail = %e, "could not send webhook deliveries");
        }
    }
}

/// How long sent and failed messages stay in the outbox (for the operator to read).
const EMAIL_KEPT_MS: i64 = 30 * keysmith_app::time::DAY_MS;

/// Every second: send the notices by email that are due.
async fn email_work(state: AppState, mailer: crate::email::Mailer) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = crate::email::send_due(&state, &mailer).await {
            tracing::warn!(error.detail = %e, "could not send notices by email");
        }
    }
}

/// The password goes to the terminal once, never to the log.
fn announce_first_admin(done: &Bootstrapped, listen: SocketAddr) {
    tracing::info!(org.name = %done.org_name, user.name = %done.username, "first start: organization and admin created");
    match &done.generated_password {
        Some(password) => {
            println!();
            println!(
                "  First start: created organization `{}` and user `{}`.",
                done.org_name, done.username
            );
            println!("  Password (shown only this once; store it in a password manager):");
            println!();
            println!("      {}", password.expose());
            println!();
            println!(
                "  Sign in as `{}` at http://{listen}/. To choose the password instead, set",
                done.username
            );
            println!("  KEYSMITH_ADMIN_PASSWORD or KEYSMITH_ADMIN_PASSWORD_FILE before the first start.");
            println!();
        }
        None => println!(
            "  First start: created user `{}` with the configured password.",
            done.username
        ),
    }
}

/// The data directory holds password hashes and key digests: only its owner may read it.
/// Reads the server secret (base64 of 32 bytes), or creates it, readable only by the
/// owner, when the file does not exist.
fn load_server_secret(path: &std::path::Path) -> Result<ServerSecret, RunError> {
    let err = |detail: String| RunError::ServerSecret {
        path: path.display().to_string(),
        detail,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| err("not base64".into()))?;
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| err("must hold 32 bytes, base64-encoded".into()))?;
            Ok(ServerSecret(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dir(dir)?;
            }
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| err(format!("no random source: {e}")))?;
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(path).map_err(|e| err(e.to_string()))?;
            std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| err(e.to_string()))?;
            file.sync_all().map_err(|e| err(e.to_string()))?;
            tracing::info!(path = %path.display(), "server secret created");
            Ok(ServerSecret(bytes))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Creates the data directory readable only by its owner. An existing directory is
/// tightened to 0700 when it is ours; one that belongs to another user is left as it
/// is (the write check that follows says whether we can use it).
fn create_private_dir(path: &std::path::Path) -> Result<(), RunError> {
    let existed = path.is_dir();
    std::fs::create_dir_all(path).map_err(|e| {
        RunError::Storage(format!(
            "cannot create the data directory {}: {e}; create it for the user Keysmith runs as, or choose another with --data-dir",
            path.display()
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)) {
            if !existed {
                return Err(RunError::Storage(format!(
                    "cannot make the new data directory {} private (mode 0700): {e}",
                    path.display()
                )));
            }
            tracing::warn!(path = %path.display(), error.detail = %e, "could not restrict the data directory to its owner (mode 0700)");
        }
    }
    Ok(())
}
