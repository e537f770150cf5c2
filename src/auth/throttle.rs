//! Lockout with exponential back-off for credential checks (login, MFA, password reset),
//! kept per account and per client address, on top of the global rate limit. The
//! per-account state lives in redb (`ACCOUNT_LOCKOUT_HASH_TO_STATE`, keyed by a hash so no
//! address is stored in clear), so a restart does not hand an attacker a fresh set of
//! guesses on a locked account; the per-address state stays in memory (bounded), since
//! addresses are cheap to change anyway. Forgotten entries are swept by the users sweep.

use super::kv;
use crate::error::{Error, Result};
use crate::store::tables::ACCOUNT_LOCKOUT_HASH_TO_STATE;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before the first lock.
    pub free_failures: u32,
    /// Length of the first lock; each further failure doubles it.
    pub base_secs: u64,
    pub max_secs: u64,
    /// A quiet period after which the failures are forgotten.
    pub forget_after_secs: u64,
}

/// The failures counted against one key and the lock they caused.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub failures: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_failure: Option<OffsetDateTime>,
}

impl Entry {
    /// Quiet for long enough that the failures no longer count.
    pub fn forgotten(&self, policy: &Policy, now: OffsetDateTime) -> bool {
        self.last_failure
            .is_some_and(|last| (now - last).whole_seconds() >= policy.forget_after_secs as i64)
            && self.locked_until.is_none_or(|u| u <= now)
    }

    /// 429 with the seconds left if locked at `now`.
    fn refuse_if_locked(&self, policy: &Policy, now: OffsetDateTime) -> Result<()> {
        if self.forgotten(policy, now) {
            return Ok(());
        }
        match self.locked_until {
            Some(until) if until > now => Err(Error::RateLimited {
                retry_after_secs: ((until - now).whole_seconds().max(1)) as u64,
            }),
            _ => Ok(()),
        }
    }

    /// Counts one failure; returns the lock it caused, in seconds, if any.
    fn record_failure(&mut self, policy: &Policy, now: OffsetDateTime) -> Option<u64> {
        if self.forgotten(policy, now) {
            *self = Entry::default();
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(now);
        let over = self.failures.checked_sub(policy.free_failures)?;
        if over == 0 {
            return None;
        }
        let secs = policy
            .base_secs
            .saturating_mul(1u64 << (over - 1).min(30))
            .min(policy.max_secs);
        self.locked_until = Some(now + time::Duration::seconds(secs as i64));
        Some(secs)
    }
}

/// The in-memory half: per client address.
#[derive(Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    /// Refuses with 429 and the seconds left if `key` is locked at `now`.
    pub fn check(&self, key: &str, policy: &Policy, now: OffsetDateTime) -> Result<()> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| Error::internal("throttle poisoned"))?;
        let Some(e) = map.get(key) else { return Ok(()) };
        if e.forgotten(policy, now) {
            map.remove(key);
            return Ok(());
        }
        e.refuse_if_locked(policy, now)
    }

    /// Counts one failure; returns the lock it caused, in seconds, if any.
    pub fn fail(&self, key: &str, policy: &Policy, now: OffsetDateTime) -> Option<u64> {
        let mut map = self.entries.lock().ok()?;
        // Bound memory under a flood of distinct keys: forget the quiet ones first.
        if map.len() > 100_000 {
            map.retain(|_, e| e.locked_until.is_some_and(|u| u > now));
        }
        map.entry(key.to_string())
            .or_default()
            .record_failure(policy, now)
    }

    pub fn succeed(&self, key: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(key);
        }
    }
}

// --- the durable half: per account, in redb ---

fn stored_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The stored entry of an account key, if any.
pub fn stored(rtx: &ReadTransaction, key: &str) -> Result<Option<Entry>> {
    kv::read(rtx, ACCOUNT_LOCKOUT_HASH_TO_STATE, &stored_key(key))
}

/// Refuses with 429 and the seconds left if the account `key` is locked at `now`.
pub fn check_stored(
    rtx: &ReadTransaction,
    key: &str,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<()> {
    match stored(rtx, key)? {
        Some(e) => e.refuse_if_locked(policy, now),
        None => Ok(()),
    }
}

/// Counts one failure against the account `key` in the caller's transaction; returns the
/// lock it caused, in seconds, if any. Concurrent failures are counted exactly, since
/// every write transaction sees the one before.
pub fn fail_stored(
    wtx: &WriteTransaction,
    key: &str,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<Option<u64>> {
    let k = stored_key(key);
    let mut e: Entry = kv::read_in(wtx, ACCOUNT_LOCKOUT_HASH_TO_STATE, &k)?.unwrap_or_default();
    let locked = e.record_failure(policy, now);
    kv::put(wtx, ACCOUNT_LOCKOUT_HASH_TO_STATE, &k, &e)?;
    Ok(locked)
}

/// Forgets the failures of the account `key` (a successful login, a password reset).
pub fn clear_stored(wtx: &WriteTransaction, key: &str) -> Result<()> {
    kv::delete(wtx, ACCOUNT_LOCKOUT_HASH_TO_STATE, &stored_key(key))
}

/// An entry the sweep may delete: forgotten at `now`, or no longer readable.
fn sweepable(bytes: &[u8], policy: &Policy, now: OffsetDateTime) -> bool {
    crate::store::codec::decode::<Entry>(bytes)
        .map(|e| e.forgotten(policy, now) || e.last_failure.is_none())
        .unwrap_or(true)
}

/// Keys of up to `limit` entries forgotten at `now` (not locked, and quiet for
/// `policy.forget_after_secs`), found in a snapshot.
pub fn find_forgotten(
    rtx: &ReadTransaction,
    policy: &Policy,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Vec<Vec<u8>>> {
    let Some(t) = kv::open_ro(rtx, ACCOUNT_LOCKOUT_HASH_TO_STATE)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        if sweepable(v.value(), policy, now) {
            out.push(k.value().to_vec());
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Deletes those of `keys` still forgotten (a failure since the snapshot keeps its entry);
/// returns how many went.
pub fn delete_forgotten(
    wtx: &WriteTransaction,
    keys: &[Vec<u8>],
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<usize> {
    let mut t = wtx.open_table(ACCOUNT_LOCKOUT_HASH_TO_STATE)?;
    let mut n = 0;
    for k in keys {
        let gone = match t.get(k.as_slice())? {
            Some(v) => sweepable(v.value(), policy, now),
            None => false,
        };
        if gone {
            t.remove(k.as_slice())?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        free_failures: 3,
        base_secs: 2,
        max_secs: 60,
        forget_after_secs: 3600,
    };

    #[test]
    fn backs_off_exponentially_and_resets() {
        let t = Throttle::default();
        let now = OffsetDateTime::now_utc();
        for _ in 0..3 {
            assert!(t.check("k", &P, now).is_ok());
            assert_eq!(t.fail("k", &P, now), None);
        }
        assert_eq!(t.fail("k", &P, now), Some(2));
        match t.check("k", &P, now) {
            Err(Error::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 2),
            other => panic!("{other:?}"),
        }
        assert!(t.check("other", &P, now).is_ok());
        let later = now + time::Duration::seconds(2);
        assert!(t.check("k", &P, later).is_ok());
        assert_eq!(t.fail("k", &P, later), Some(4));
        assert_eq!(t.fail("k", &P, later), Some(8));
        for _ in 0..10 {
            t.fail("k", &P, later);
        }
        assert_eq!(t.fail("k", &P, later), Some(60), "capped");
        t.succeed("k");
        assert!(t.check("k", &P, later).is_ok());
        // Quiet long enough: forgotten.
        t.fail("q", &P, now);
        t.fail("q", &P, now);
        t.fail("q", &P, now);
        let much_later = now + time::Duration::hours(2);
        assert_eq!(t.fail("q", &P, much_later), None);
    }
}
