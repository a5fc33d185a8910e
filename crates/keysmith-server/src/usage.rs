//! Last-used times and recent sources (address and user agent, first and last seen),
//! recorded in memory on every verification and written to the database in batches:
//! a busy key costs one map update per request, not one write. A crash loses at most
//! the last unflushed interval.
//!
//! Memory is bounded: at most [`MAX_PENDING_SOURCES`] distinct (key, address, user
//! agent) triples wait between flushes; beyond that, new sources of the interval are
//! not recorded (the last-used time still is). The store keeps the most recent
//! sources of each key (`keysmith_store::MAX_SOURCES_PER_KEY`).

use crate::auth::verify::Client;
use keysmith_core::KeyId;
use keysmith_store::{KeySourceUse, Store};
use std::collections::HashMap;
use std::sync::Mutex;

/// Distinct sources held in memory between two flushes, at most.
pub const MAX_PENDING_SOURCES: usize = 100_000;
/// A user agent is kept to this many characters.
pub const MAX_USER_AGENT_CHARS: usize = 200;

type SourceKey = (KeyId, String, String);

#[derive(Debug, Default)]
struct Pending {
    last_used: HashMap<KeyId, i64>,
    sources: HashMap<SourceKey, (i64, i64)>,
}

#[derive(Debug, Default)]
pub struct UsageRecorder {
    pending: Mutex<Pending>,
}

fn clip(user_agent: &str) -> String {
    user_agent
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect()
}

impl UsageRecorder {
    /// Notes that `key_id` was used at `at` by `client`.
    pub fn record(&self, key_id: &KeyId, at: i64, client: Client<'_>) {
        let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let pending = &mut *guard;
        let t = pending.last_used.entry(key_id.clone()).or_insert(at);
        *t = (*t).max(at);
        let source = (key_id.clone(), client.address.to_owned(), clip(client.user_agent));
        let room = pending.sources.len() < MAX_PENDING_SOURCES;
        match pending.sources.get_mut(&source) {
            Some((first, last)) => {
                *first = (*first).min(at);
                *last = (*last).max(at);
            }
            None if room => {
                pending.sources.insert(source, (at, at));
            }
            None => {}
        }
    }

    /// The last use noted since the last flush, if any.
    pub fn pending(&self, key_id: &KeyId) -> Option<i64> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_used
            .get(key_id)
            .copied()
    }

    /// The sources of `key_id` noted since the last flush: (address, user agent, first
    /// seen, last seen).
    pub fn pending_sources(&self, key_id: &KeyId) -> Vec<(String, String, i64, i64)> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sources
            .iter()
            .filter(|((k, _, _), _)| k == key_id)
            .map(|((_, a, u), (f, l))| (a.clone(), u.clone(), *f, *l))
            .collect()
    }

    /// Writes what is pending; on failure it stays pending for the next try.
    pub async fn flush(&self, store: &dyn Store) -> keysmith_store::Result<usize> {
        let Pending { last_used, sources } =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if last_used.is_empty() && sources.is_empty() {
            return Ok(0);
        }
        let uses: Vec<(KeyId, i64)> = last_used.iter().map(|(k, t)| (k.clone(), *t)).collect();
        let seen: Vec<KeySourceUse> = sources
            .iter()
            .map(|((key_id, address, user_agent), (first, last))| KeySourceUse {
                key_id: key_id.clone(),
                address: address.clone(),
                user_agent: user_agent.clone(),
                first_seen: *first,
                last_seen: *last,
            })
            .collect();
        let written = match store.record_key_use(&uses).await {
            Ok(()) => store.record_key_sources(&seen).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => Ok(uses.len()),
            Err(e) => {
                // Put everything back, merged with what arrived meanwhile.
                for ((key_id, address, user_agent), (first, last)) in sources {
                    let client = Client {
                        address: &address,
                        user_agent: &user_agent,
                    };
                    self.record(&key_id, first, client);
                    self.record(&key_id, last, client);
                }
                for (key_id, at) in last_used {
                    let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                    let t = pending.last_used.entry(key_id).or_insert(at);
                    *t = (*t).max(at);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_clipped_and_stripped_of_control_characters() {
        let long = "a".repeat(500);
        assert_eq!(clip(&long).len(), MAX_USER_AGENT_CHARS);
        assert_eq!(clip("curl/8\r\nX-Injected: 1"), "curl/8X-Injected: 1");
    }

    #[test]
    fn sources_merge_first_and_last_seen() {
        let r = UsageRecorder::default();
        let key = KeyId::parse("wandb_v1_aaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let c = Client {
            address: "10.0.0.1",
            user_agent: "wandb",
        };
        r.record(&key, 20, c);
        r.record(&key, 10, c);
        r.record(&key, 30, c);
        let pending = r.pending.lock().unwrap();
        assert_eq!(pending.sources.len(), 1);
        assert_eq!(pending.sources.values().next(), Some(&(10, 30)));
        assert_eq!(pending.last_used.get(&key), Some(&30));
    }
}
