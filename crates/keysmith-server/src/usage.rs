//! Last-used times, recorded in memory on every verification and written to the
//! database in batches: a busy key costs one map update per request, not one write.
//! A crash loses at most the last unflushed interval.

use keysmith_core::KeyId;
use keysmith_store::Store;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<KeyId, i64>>,
}

impl UsageRecorder {
    pub fn record(&self, key_id: &KeyId, at: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get_mut(key_id) {
            Some(t) => *t = (*t).max(at),
            None => {
                pending.insert(key_id.clone(), at);
            }
        }
    }

    /// The pending time for a key not yet written, so reads can show it at once.
    pub fn pending(&self, key_id: &KeyId) -> Option<i64> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key_id)
            .copied()
    }

    /// Writes everything pending in one transaction. On failure the times are put back
    /// so the next flush tries again.
    pub async fn flush(&self, store: &dyn Store) -> keysmith_store::Result<usize> {
        let batch: Vec<(KeyId, i64)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match store.record_key_use(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                for (key_id, at) in batch {
                    self.record(&key_id, at);
                }
                Err(e)
            }
        }
    }
}
