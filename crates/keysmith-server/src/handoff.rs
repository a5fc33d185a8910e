//! The one place a key's plaintext lives after the request that created it, in memory
//! only, for one read by the same caller within five minutes; never in the database
//! or a log. Two flows need it:
//!
//! - the wandb SDK's `Team.create_service_account` creates a service account in one
//!   request and reads its key in the next (`members[].apiKey` of `GetTeamEntity`);
//! - the web interface creates a key with a POST and shows it on the page the browser
//!   is redirected to, so that reloading never creates a second key and the key never
//!   travels in a URL.

use keysmith_core::SecretString;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

const TTL_MS: i64 = 5 * keysmith_app::time::MINUTE_MS;
const MAX_WAITING: usize = 10_000;

pub struct KeyHandoff<K> {
    waiting: Mutex<HashMap<K, (SecretString, i64)>>,
}

impl<K> Default for KeyHandoff<K> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash> KeyHandoff<K> {
    /// Keeps `key` under `slot` (which names the caller) to be taken once.
    pub fn put(&self, slot: K, key: SecretString, now: i64) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.retain(|_, (_, expires)| *expires > now);
        if waiting.len() < MAX_WAITING {
            waiting.insert(slot, (key, now + TTL_MS));
        }
    }

    /// The key left under `slot`, if it has not expired; it is gone after.
    pub fn take(&self, slot: &K, now: i64) -> Option<SecretString> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.remove(slot) {
            Some((key, expires)) if expires > now => Some(key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keysmith_core::UserId;

    #[test]
    fn a_key_is_taken_once_by_its_caller_before_it_expires() {
        let h = KeyHandoff::default();
        let (alice, bob, bot) = (UserId(1), UserId(2), UserId(3));
        h.put((alice, bot), SecretString::new("k".into()), 0);
        assert!(h.take(&(bob, bot), 1).is_none(), "another caller gets nothing");
        assert_eq!(h.take(&(alice, bot), 1).unwrap().expose(), "k");
        assert!(h.take(&(alice, bot), 2).is_none(), "only once");
        h.put((alice, bot), SecretString::new("k2".into()), 0);
        assert!(h.take(&(alice, bot), TTL_MS).is_none(), "expired");
    }
}
