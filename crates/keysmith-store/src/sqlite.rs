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
    /// The connection pool, for copying whole databases (`crate::copy`).
    pub(crate) fn pool(&self) -> &Pool<Sqlite> {
        &self.pool
    }

    /// Opens (creating if missing) the database file at `path` and applies migrations.
    pub async fn open(path: &Path) -> crate::Result<Self> {
        match create_private(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(crate::StoreError::Open(format!(
                    "cannot create the SQLite database {}: {e}; check that the data directory exists and is writable",
                    path.display()
                )));
            }
        }
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
        // A backup restored from a newer version may hold migrations this binary does not
        // know; `schema_compat` says whether this one may read it.
        crate::schema::migrate!(&pool, "./migrations/sqlite", path.display());
        Ok(Self {
            pool,
            hooks: std::sync::Arc::default(),
        })
    }

    /// One process owns a SQLite file: there are no other replicas to hear from.
    async fn subscribe(&self) -> crate::Result<Option<Box<dyn crate::InvalidationFeed>>> {
        Ok(None)
    }

    /// `VACUUM INTO`: one read transaction copies every page, so the copy is the
    /// database of one moment, while the server goes on writing (WAL).
    async fn backup_into(&self, path: &Path) -> crate::Result<()> {
        let text = path
            .to_str()
            .ok_or_else(|| crate::StoreError::Open(format!("{} is not a UTF-8 path", path.display())))?;
        // Made here, empty and private, so that the copy of every digest is as private as
        // the database whatever the umask (VACUUM INTO fills an empty file); `create_new`
        // is also the check that nothing is overwritten.
        create_private(path).map_err(|e| {
            crate::StoreError::Open(if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} already exists; a backup never overwrites a file", path.display())
            } else {
                format!("cannot create {}: {e}", path.display())
            })
        })?;
        if let Err(e) = sqlx::query("VACUUM INTO $1").bind(text).execute(&self.pool).await {
            let _ = std::fs::remove_file(path);
            return Err(crate::StoreError::Backend(format!("backup to {}: {e}", path.display())));
        }
        Ok(())
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

/// Creates `path` empty, readable and writable by its owner alone (0600), whatever the
/// umask: a database holds password hashes and key digests, and SQLite gives its
/// `-wal` and `-shm` files the database file's mode. `AlreadyExists` if it exists.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// Checks that `path` holds a sound Keysmith database (SQLite's integrity check, and
/// Keysmith's tables), without writing to it, and counts the rows of each table.
pub async fn inspect_backup(path: &Path) -> crate::Result<Vec<(String, i64)>> {
    let bad = |why: String| crate::StoreError::Open(format!("{} is not a Keysmith backup: {why}", path.display()));
    if !path.is_file() {
        return Err(crate::StoreError::Open(format!("{} does not exist", path.display())));
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .map_err(|e| bad(e.to_string()))?;
    if check != "ok" {
        return Err(bad(format!("SQLite's integrity check says {check}")));
    }
    let mut counts = Vec::new();
    for table in crate::TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .map_err(|e| bad(format!("table {table}: {e}")))?;
        counts.push(((*table).to_owned(), n));
    }
    pool.close().await;
    Ok(counts)
}

/// Restores the backup at `backup` as the database file `target`, which must not
/// exist: checked first ([`inspect_backup`]), copied beside the target, synced to disk
/// and renamed into place, so a crash leaves either no database or the whole one; then
/// opened, which applies the migrations a backup of an older version lacks.
pub async fn restore_backup(backup: &Path, target: &Path) -> crate::Result<SqliteStore> {
    let open_err = |what: &str, e: std::io::Error| crate::StoreError::Open(format!("{what}: {e}"));
    if target.exists() {
        return Err(crate::StoreError::Open(format!(
            "{} already exists; restore only into a data directory without a database",
            target.display()
        )));
    }
    inspect_backup(backup).await?;
    let partial = target.with_extension("db.restoring");
    std::fs::copy(backup, &partial).map_err(|e| open_err(&format!("copy to {}", partial.display()), e))?;
    {
        // The copy took the backup's mode; the database is its owner's alone.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| open_err(&format!("chmod {}", partial.display()), e))?;
    }
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| open_err("sync", e))?;
    std::fs::rename(&partial, target).map_err(|e| open_err(&format!("rename to {}", target.display()), e))?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| open_err("sync the directory", e))?;
    }
    SqliteStore::open(target).await
}
