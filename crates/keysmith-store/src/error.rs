use crate::model::Refused;
use thiserror::Error;

/// What can go wrong in the store, without the database driver's types.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the text names what already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database URL or file could not be used. The message says what to fix.
    #[error("{0}")]
    Open(String),
    /// A row did not hold what the schema promises (a corrupted or foreign database).
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    /// A rule of the data refused the change (it would leave an organization without
    /// an active admin); nothing was written.
    #[error("{0}")]
    Refused(Refused),
    /// Any other database failure: connection lost, disk full, timeout.
    #[error("database error: {0}")]
    Backend(String),
}

impl StoreError {
    pub(crate) fn from_sqlx(err: sqlx::Error, conflict: &'static str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(conflict),
            _ => Self::Backend(err.to_string()),
        }
    }
}
