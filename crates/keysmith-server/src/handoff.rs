//! The one place a key's plaintext lives after the response that created it: the
//! wandb SDK's `Team.create_service_account` creates a service account in one request
//! and reads its key in the next (`members[].apiKey` of `GetTeamEntity`). The key waits
//! here, in memory only, for that one read by the same caller, for at most five
//! minutes; it is never written to the database or a log.

use keysmith_core::{SecretString, UserId};
use std::collections::HashMap;
use std::sync::Mutex;

const TTL_MS: i64 = 5 * 60 * 1000;
const MAX_WAITING: usize = 10_000;

#[derive(Default)]
pub struct KeyHandoff {
    waiting: Mutex<HashMap<(UserId, UserId), (SecretString, i64)>>,
}

impl KeyHandoff {
    /// Keeps `key` of service account `account` for `caller` to take once.
    pub fn put(&self, caller: UserId, account: UserId, key: SecretString, now: i64) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.retain(|_, (_, expires)| *expires > now);
        if waiting.len() < MAX_WAITING {
            waiting.insert((caller, account), (key, now + TTL_MS));
        }
    }

    /// The key, if `caller` left one for `account` that has not expired; it is gone after.
    pub fn take(&self, caller: UserId, account: UserId, now: i64) -> Option<SecretString> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.remove(&(caller, account)) {
            Some((key, expires)) if expires > now => Some(key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_taken_once_by_its_caller_before_it_expires() {
        let h = KeyHandoff::default();
        let (alice, bob, bot) = (UserId(1), UserId(2), UserId(3));
        h.put(alice, bot, SecretString::new("k".into()), 0);
        assert!(h.take(bob, bot, 1).is_none(), "another caller gets nothing");
        assert_eq!(h.take(alice, bot, 1).unwrap().expose(), "k");
        assert!(h.take(alice, bot, 2).is_none(), "only once");
        h.put(alice, bot, SecretString::new("k2".into()), 0);
        assert!(h.take(alice, bot, TTL_MS).is_none(), "expired");
    }
}
