//! Which binaries may run against a database: the rule that makes rolling upgrades
//! safe (docs/OPERATIONS.md, "Upgrading").
//!
//! Migrations only add, so code of an older version runs against a newer schema; a
//! migration that breaks that raises `schema_compat.oldest_reader` to its own version,
//! and a binary that does not know that migration refuses to start.

use crate::StoreError;

/// The oldest migration a binary must know to use the database.
pub(crate) const OLDEST_READER: &str = "SELECT oldest_reader FROM schema_compat WHERE id = 1";

/// Applies this binary's migrations in `$dir` to `$pool`, leaving alone those a newer
/// version applied, then refuses the database if one of those says this binary may not
/// read it. `$what` names the database in the error.
macro_rules! migrate {
    ($pool:expr, $dir:literal, $what:expr) => {{
        let mut migrator = sqlx::migrate!($dir);
        migrator.set_ignore_missing(true);
        migrator
            .run($pool)
            .await
            .map_err(|e| crate::StoreError::Open(format!("cannot migrate {}: {e}", $what)))?;
        let oldest_reader: i64 = sqlx::query_scalar(crate::schema::OLDEST_READER)
            .fetch_one($pool)
            .await
            .map_err(|e| crate::StoreError::Open(e.to_string()))?;
        crate::schema::check_compat(oldest_reader, &migrator)?;
    }};
}
pub(crate) use migrate;

/// `Err` with a sentence when `oldest_reader` is newer than the newest migration this
/// binary carries.
pub(crate) fn check_compat(oldest_reader: i64, migrator: &sqlx::migrate::Migrator) -> crate::Result<()> {
    let newest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    if oldest_reader > newest {
        return Err(StoreError::Open(format!(
            "this database was upgraded by a newer Keysmith, whose schema needs a binary that knows \
             migration {oldest_reader} or later; this one knows migrations up to {newest}. Upgrade this \
             replica to the version the others run"
        )));
    }
    Ok(())
}
