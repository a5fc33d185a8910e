//! PostgreSQL 15+, for several replicas sharing one database.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool<Postgres>,
    hooks: std::sync::Arc<crate::Hooks>,
}

/// The channel replicas announce invalidations on.
pub const INVALIDATION_CHANNEL: &str = "keysmith_invalidations";

/// The name the notification connection shows in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "keysmith-invalidations";

struct PgFeed {
    listener: sqlx::postgres::PgListener,
}

#[async_trait::async_trait]
impl crate::InvalidationFeed for PgFeed {
    async fn next(&mut self) -> crate::Result<crate::Notice> {
        loop {
            match self.listener.try_recv().await {
                Ok(Some(notification)) => {
                    // `<invalidation>@<sent at, Unix ms>`; anything else is not ours.
                    let payload = notification.payload();
                    let Some((what, at)) = payload.rsplit_once('@') else {
                        continue;
                    };
                    if let (Some(invalidation), Ok(sent_at_ms)) = (crate::Invalidation::decode(what), at.parse()) {
                        return Ok(crate::Notice {
                            invalidation,
                            sent_at_ms,
                        });
                    }
                }
                Ok(None) => {
                    return Err(crate::StoreError::Backend(
                        "the notification connection to PostgreSQL was lost".into(),
                    ));
                }
                Err(e) => return Err(crate::StoreError::Backend(e.to_string())),
            }
        }
    }
}

impl PostgresStore {
    /// The connection pool, for copying whole databases (`crate::copy`).
    pub(crate) fn pool(&self) -> &Pool<Postgres> {
        &self.pool
    }

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
        // A newer replica may have applied migrations this binary does not know: during a
        // rolling upgrade this one still runs, unless `schema_compat` says it may not.
        crate::schema::migrate!(&pool, "./migrations/postgres", "the PostgreSQL database");
        Ok(Self {
            pool,
            hooks: std::sync::Arc::default(),
        })
    }

    /// PostgreSQL's own tools make its backups.
    async fn backup_into(&self, _path: &std::path::Path) -> crate::Result<()> {
        Err(crate::StoreError::Open(
            "PostgreSQL is backed up with pg_dump: pg_dump --format=custom --file=keysmith.dump \"$DATABASE_URL\" \
             (docs/OPERATIONS.md, Backups)"
                .into(),
        ))
    }

    /// A dedicated connection that `LISTEN`s for other replicas' invalidations.
    async fn subscribe(&self) -> crate::Result<Option<Box<dyn crate::InvalidationFeed>>> {
        let err = |e: sqlx::Error| crate::StoreError::Backend(e.to_string());
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(err)?;
        sqlx::query(&format!("SET application_name = '{LISTENER_APPLICATION_NAME}'"))
            .execute(&mut listener)
            .await
            .map_err(err)?;
        listener.listen(INVALIDATION_CHANNEL).await.map_err(err)?;
        Ok(Some(Box::new(PgFeed { listener })))
    }
}

crate::sql_store::sql_store!(
    PostgresStore,
    Postgres,
    Backend::Postgres,
    "BEGIN",
    " FOR UPDATE",
    crate::sql_store::OrderHint::DisableSort,
    "k.name ILIKE",
    true,
    "string_agg(o.name, ',')",
    "string_agg(o.allowed_networks, ';')"
);
