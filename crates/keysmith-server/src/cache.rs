//! The revocation fan-out: keeps this replica's caches (keys, callers, sessions: all
//! in `keysmith-app`) in step with the other replicas' changes, heard by PostgreSQL's
//! `LISTEN/NOTIFY`. The caches themselves and their rules are the application's
//! (`keysmith_app::verify_cache`, docs/DESIGN.md §7).

use crate::metrics::Metrics;
use keysmith_store::{Notice, Store};
use std::sync::Arc;
use std::time::Duration;

pub use keysmith_app::verify_cache::{Entry, OwnerInfo, VerifyCache};

/// Keeps this replica's cache in step with the others (PostgreSQL): applies every
/// notice; when the connection drops, stops serving from the cache and clears it,
/// reconnects after `retry`, and clears it again before serving from it. Returns at
/// once for a store without other replicas.
pub async fn run_fanout(store: Arc<dyn Store>, app: keysmith_app::App, metrics: Arc<Metrics>, retry: Duration) {
    loop {
        match store.subscribe_invalidations().await {
            Ok(None) => return,
            Ok(Some(mut feed)) => {
                app.set_caches_live(true);
                metrics.fanout_connected.set(1);
                tracing::info!("listening for other replicas' revocations");
                loop {
                    match feed.next().await {
                        Ok(Notice {
                            invalidation,
                            sent_at_ms,
                        }) => {
                            app.apply_invalidation(&invalidation);
                            let lag_ms = crate::clock::wall_ms() - sent_at_ms;
                            metrics.observe_fanout_lag(lag_ms);
                        }
                        Err(e) => {
                            app.set_caches_live(false);
                            metrics.fanout_connected.set(0);
                            metrics.fanout_reconnects.inc();
                            tracing::warn!(error.detail = %e, "revocation notices lost: the cache is off until reconnected");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                app.set_caches_live(false);
                metrics.fanout_connected.set(0);
                tracing::warn!(error.detail = %e, "cannot listen for revocations; retrying");
            }
        }
        tokio::time::sleep(retry).await;
    }
}
