//! Last-used times and recent sources (address and user agent, first and last seen),
//! recorded in memory on every verification and written to the database in batches:
//! a busy key costs one map update per request, not one write. A crash loses at most
//! the last unflushed interval.
//!
//! Memory is bounded: at most [`MAX_PENDING_SOURCES`] distinct (key, address, user
//! agent) triples wait between flushes; beyond that, new sources of the interval are
//! not recorded (the last-used time still is). The store keeps the most recent
//! sources of each key (`keysmith_store::MAX_SOURCES_PER_KEY`).

use keysmith_core::KeyId;
use keysmith_store::{KeySourceUse, Store};
use std::collections::HashMap;
use std::sync::Mutex;

/// Where a verification came from: the client's address (behind trusted proxies, the
/// real client's) and its user agent.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub address: &'a str,
    pub user_agent: &'a str,
    /// The address itself, for allowlists; `None` when unknown (which no allowlist
    /// contains).
    pub ip: Option<std::net::IpAddr>,
    /// Whether the request may change state: any method but GET, HEAD and OPTIONS,
    /// and any request whose method is not known (the key report's "reads only").
    pub write: bool,
}

impl Client<'_> {
    /// Whether a request with HTTP method `method` may change state.
    pub fn writes(method: &str) -> bool {
        !matches!(method, "GET" | "HEAD" | "OPTIONS")
    }
}

/// Distinct sources held in memory between two flushes, at most.
pub const MAX_PENDING_SOURCES: usize = 100_000;
/// A user agent is kept to this many characters.
pub const MAX_USER_AGENT_CHARS: usize = 200;

#[derive(Debug)]
struct SourceRec {
    key_id: KeyId,
    address: String,
    user_agent: String,
    first: i64,
    last: i64,
}

/// foldhash, seeded per process: verification hashes here on every request.
type Hasher = foldhash::fast::RandomState;

#[derive(Debug, Default)]
struct Pending {
    /// One entry per key, so a request costs one lookup for both times.
    last_used: HashMap<KeyId, Times, Hasher>,
    /// By a hash of (key, address, user agent), so that a source seen before is found
    /// without building its strings.
    sources: HashMap<u64, Vec<SourceRec>, Hasher>,
    source_count: usize,
}

/// Shards of the pending map, so that verifications on several cores rarely wait
/// on one lock.
const SHARDS: usize = 16;

#[derive(Debug)]
pub struct UsageRecorder {
    shards: Box<[Mutex<Pending>]>,
    hasher: Hasher,
}

impl Default for UsageRecorder {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Pending::default())).collect(),
            hasher: Hasher::default(),
        }
    }
}

/// The first [`MAX_USER_AGENT_CHARS`] characters, without copying.
fn clip_view(user_agent: &str) -> &str {
    match user_agent.char_indices().nth(MAX_USER_AGENT_CHARS) {
        Some((end, _)) => &user_agent[..end],
        None => user_agent,
    }
}

/// What is stored: at most [`MAX_USER_AGENT_CHARS`] characters, no control characters.
fn clip(user_agent: &str) -> String {
    user_agent
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect()
}

/// A key's last use and last request that may change state since the last flush.
#[derive(Debug, Clone, Copy)]
struct Times {
    used: i64,
    /// [`NO_WRITE`]: none.
    wrote: i64,
}

const NO_WRITE: i64 = i64::MIN;

/// Keeps the later of each time and what `times` holds for `key_id`.
fn note(times: &mut HashMap<KeyId, Times, Hasher>, key_id: &KeyId, used: i64, wrote: i64) {
    match times.get_mut(key_id) {
        Some(t) => {
            t.used = t.used.max(used);
            t.wrote = t.wrote.max(wrote);
        }
        None => {
            times.insert(key_id.clone(), Times { used, wrote });
        }
    }
}

impl UsageRecorder {
    /// Notes that `key_id` was used at `at` by `client`.
    fn shard(&self, key_id: &KeyId) -> &Mutex<Pending> {
        use std::hash::BuildHasher;
        let i = usize::try_from(self.hasher.hash_one(key_id.as_str()) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    pub fn record(&self, key_id: &KeyId, at: i64, client: Client<'_>) {
        let mut guard = self.shard(key_id).lock().unwrap_or_else(|p| p.into_inner());
        let pending = &mut *guard;
        note(
            &mut pending.last_used,
            key_id,
            at,
            if client.write { at } else { NO_WRITE },
        );
        // A source seen before costs a hash and a lookup; only a new one allocates.
        let agent = clip_view(client.user_agent);
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, (key_id.as_str(), client.address, agent));
        let bucket = pending.sources.entry(hash).or_default();
        match bucket
            .iter_mut()
            .find(|s| s.key_id == *key_id && s.address == client.address && s.user_agent == agent)
        {
            Some(s) => {
                s.first = s.first.min(at);
                s.last = s.last.max(at);
            }
            None if pending.source_count < MAX_PENDING_SOURCES / SHARDS => {
                bucket.push(SourceRec {
                    key_id: key_id.clone(),
                    address: client.address.to_owned(),
                    user_agent: clip(agent),
                    first: at,
                    last: at,
                });
                pending.source_count += 1;
            }
            None => {}
        }
    }

    /// The last use noted since the last flush, if any.
    pub fn pending(&self, key_id: &KeyId) -> Option<i64> {
        self.shard(key_id)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_used
            .get(key_id)
            .map(|t| t.used)
    }

    /// The last request that may change state noted since the last flush, if any.
    pub fn pending_write(&self, key_id: &KeyId) -> Option<i64> {
        self.shard(key_id)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_used
            .get(key_id)
            .map(|t| t.wrote)
            .filter(|&t| t != NO_WRITE)
    }

    /// The sources of `key_id` noted since the last flush: (address, user agent, first
    /// seen, last seen).
    pub fn pending_sources(&self, key_id: &KeyId) -> Vec<(String, String, i64, i64)> {
        self.shard(key_id)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sources
            .values()
            .flatten()
            .filter(|s| s.key_id == *key_id)
            .map(|s| (s.address.clone(), s.user_agent.clone(), s.first, s.last))
            .collect()
    }

    /// Writes what is pending; on failure it stays pending for the next try.
    pub async fn flush(&self, store: &dyn Store) -> keysmith_store::Result<usize> {
        let mut uses: Vec<(KeyId, i64)> = Vec::new();
        let mut writes: Vec<(KeyId, i64)> = Vec::new();
        let mut seen: Vec<KeySourceUse> = Vec::new();
        for shard in self.shards.iter() {
            let pending = std::mem::take(&mut *shard.lock().unwrap_or_else(|p| p.into_inner()));
            for (key_id, t) in pending.last_used {
                if t.wrote != NO_WRITE {
                    writes.push((key_id.clone(), t.wrote));
                }
                uses.push((key_id, t.used));
            }
            seen.extend(pending.sources.into_values().flatten().map(|s| KeySourceUse {
                key_id: s.key_id,
                address: s.address,
                user_agent: s.user_agent,
                first_seen: s.first,
                last_seen: s.last,
            }));
        }
        if uses.is_empty() && seen.is_empty() {
            return Ok(0);
        }
        let written = match store.record_key_use(&uses).await {
            Ok(()) => match store.record_key_writes(&writes).await {
                Ok(()) => store.record_key_sources(&seen).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => Ok(uses.len()),
            Err(e) => {
                // Put everything back, merged with what arrived meanwhile.
                for s in &seen {
                    let client = Client {
                        address: &s.address,
                        user_agent: &s.user_agent,
                        ip: None,
                        write: false,
                    };
                    self.record(&s.key_id, s.first_seen, client);
                    self.record(&s.key_id, s.last_seen, client);
                }
                let wrote: HashMap<KeyId, i64> = writes.into_iter().collect();
                for (key_id, used) in uses {
                    let at = wrote.get(&key_id).copied().unwrap_or(NO_WRITE);
                    let mut pending = self.shard(&key_id).lock().unwrap_or_else(|p| p.into_inner());
                    note(&mut pending.last_used, &key_id, used, at);
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
    fn writes_are_noted_with_uses_and_only_for_requests_that_may_write() {
        let r = UsageRecorder::default();
        let key = KeyId::parse("wandb_v1_aaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let client = |write| Client {
            address: "10.0.0.1",
            user_agent: "wandb",
            ip: None,
            write,
        };
        r.record(&key, 10, client(false));
        assert_eq!((r.pending(&key), r.pending_write(&key)), (Some(10), None));
        r.record(&key, 30, client(true));
        r.record(&key, 20, client(true));
        r.record(&key, 40, client(false));
        assert_eq!((r.pending(&key), r.pending_write(&key)), (Some(40), Some(30)));
        assert!(Client::writes("POST") && Client::writes("DELETE") && Client::writes("PATCH"));
        assert!(!Client::writes("GET") && !Client::writes("HEAD") && !Client::writes("OPTIONS"));
    }

    #[test]
    fn sources_merge_first_and_last_seen() {
        let r = UsageRecorder::default();
        let key = KeyId::parse("wandb_v1_aaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let c = Client {
            address: "10.0.0.1",
            user_agent: "wandb",
            ip: None,
            write: false,
        };
        r.record(&key, 20, c);
        r.record(&key, 10, c);
        r.record(&key, 30, c);
        assert_eq!(
            r.pending_sources(&key),
            vec![("10.0.0.1".into(), "wandb".into(), 10, 30)]
        );
        assert_eq!(r.pending(&key), Some(30));
        let long = "x".repeat(300);
        r.record(
            &key,
            40,
            Client {
                address: "10.0.0.1",
                user_agent: &long,
                ip: None,
                write: false,
            },
        );
        r.record(
            &key,
            50,
            Client {
                address: "10.0.0.1",
                user_agent: &long,
                ip: None,
                write: false,
            },
        );
        assert_eq!(r.pending_sources(&key).len(), 2, "a clipped agent is found again");
    }
}
