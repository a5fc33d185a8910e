//! Choosing the backend from a URL, as one binary serves both.

use crate::{PostgresStore, SqliteStore, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The database file a `sqlite://` (or `sqlite:`) URL names; `None` for any other URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// Opens the store a URL names: `postgres://` or `postgresql://` for PostgreSQL,
/// `sqlite://<path>` or `sqlite:<path>` for SQLite.
pub async fn open(url: &str) -> crate::Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(url).await?));
    }
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        if path.is_empty() {
            return Err(StoreError::Open(
                "the SQLite URL names no file; use sqlite://<path>".into(),
            ));
        }
        return Ok(Arc::new(SqliteStore::open(Path::new(path)).await?));
    }
    let scheme = url.split_once("://").map_or("(none)", |(s, _)| s);
    Err(StoreError::Open(format!(
        "unsupported database URL scheme `{scheme}`: use postgres://user:password@host/db or sqlite://<path>"
    )))
}

/// The database a URL names, opened and migrated, for a copy.
async fn side(url: &str) -> crate::Result<crate::copy::Side> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(crate::copy::Side::Postgres(
            PostgresStore::open(url).await?.pool().clone(),
        ));
    }
    match sqlite_path(url) {
        Some(path) => Ok(crate::copy::Side::Sqlite(
            SqliteStore::open(&path).await?.pool().clone(),
        )),
        None => Err(StoreError::Open(format!(
            "unsupported database URL `{}`: use postgres://user:password@host/db or sqlite://<path>",
            url.split_once("://").map_or("(none)", |(s, _)| s)
        ))),
    }
}

/// Copies the database at `from` into the empty database at `to` (either backend to
/// either), both brought to this version's schema first; see [`crate::copy`].
pub async fn migrate_database(from: &str, to: &str) -> crate::Result<Vec<crate::copy::TableCopy>> {
    let source = side(from).await?;
    let target = side(to).await?;
    crate::copy::copy(&source, &target).await
}
