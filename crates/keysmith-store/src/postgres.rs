//! PostgreSQL 15+, for several replicas sharing one database.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool<Postgres>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and applies migrations.
    pub async fn open(url: &str) -> crate::Result<Self> {
        // JIT compilation pays off for long analytical queries; for short OLTP queries
        // it only adds tens to hundreds of milliseconds when an estimate runs high.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| crate::StoreError::Open(format!("the PostgreSQL URL is not valid: {e}")))?
            .options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| {
                crate::StoreError::Open(format!(
                    "cannot connect to PostgreSQL: {e}; check that the server runs and the URL's user, password and database are right"
                ))
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| crate::StoreError::Open(format!("cannot migrate the PostgreSQL database: {e}")))?;
        Ok(Self { pool })
    }
}

crate::sql_store::sql_store!(
    PostgresStore,
    Postgres,
    Backend::Postgres,
    " FOR UPDATE",
    crate::sql_store::OrderHint::DisableSort,
    "k.name ILIKE"
);
