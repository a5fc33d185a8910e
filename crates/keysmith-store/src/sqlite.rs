//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`, so an
//! acknowledged write survives a crash or power loss.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};
use std::path::Path;
use std::time::Duration;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<Sqlite>,
    hooks: std::sync::Arc<crate::Hooks>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and applies migrations.
    pub async fn open(path: &Path) -> crate::Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| {
                crate::StoreError::Open(format!(
                    "cannot open the SQLite database {}: {e}; check that the data directory exists and is writable",
                    path.display()
                ))
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| crate::StoreError::Open(format!("cannot migrate {}: {e}", path.display())))?;
        Ok(Self {
            pool,
            hooks: std::sync::Arc::default(),
        })
    }

    /// One process owns a SQLite file: there are no other replicas to hear from.
    async fn subscribe(&self) -> crate::Result<Option<Box<dyn crate::InvalidationFeed>>> {
        Ok(None)
    }
}

crate::sql_store::sql_store!(
    SqliteStore,
    Sqlite,
    Backend::Sqlite,
    "BEGIN IMMEDIATE",
    "",
    crate::sql_store::OrderHint::IndexedBy,
    "k.name LIKE",
    false,
    "group_concat(o.name, ',')",
    "group_concat(o.allowed_networks, ';')"
);

impl SqliteStore {
    /// The value of a pragma on one pooled connection, for tests and `doctor`.
    pub async fn pragma(&self, name: &str) -> crate::Result<String> {
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(crate::StoreError::Backend(format!("not a pragma name: {name}")));
        }
        let row = sqlx::query(&format!("PRAGMA {name}"))
            .fetch_one(&self.pool)
            .await
            .map_err(backend_err)?;
        let value: sqlx::Result<String> = row.try_get(0);
        match value {
            Ok(v) => Ok(v),
            Err(_) => Ok(row.try_get::<i64, _>(0).map_err(backend_err)?.to_string()),
        }
    }
}
