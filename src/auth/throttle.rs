//! Lockout with exponential back-off for credential checks (login, MFA, password reset),
//! kept per account and per client address, on top of the global rate limit. In memory:
//! a restart forgets it, which costs an attacker nothing they could not get by waiting.

use crate::error::{Error, Result};
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

#[derive(Debug, Default)]
struct Entry {
    failures: u32,
    locked_until: Option<OffsetDateTime>,
    last_failure: Option<OffsetDateTime>,
}

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
        if let Some(last) = e.last_failure
            && (now - last).whole_seconds() >= policy.forget_after_secs as i64
        {
            map.remove(key);
            return Ok(());
        }
        match e.locked_until {
            Some(until) if until > now => Err(Error::RateLimited {
                retry_after_secs: ((until - now).whole_seconds().max(1)) as u64,
            }),
            _ => Ok(()),
        }
    }

    /// Counts one failure; returns the lock it caused, in seconds, if any.
    pub fn fail(&self, key: &str, policy: &Policy, now: OffsetDateTime) -> Option<u64> {
        let mut map = self.entries.lock().ok()?;
        // Bound memory under a flood of distinct keys: forget the quiet ones first.
        if map.len() > 100_000 {
            map.retain(|_, e| e.locked_until.is_some_and(|u| u > now));
        }
        let e = map.entry(key.to_string()).or_default();
        if let Some(last) = e.last_failure
            && (now - last).whole_seconds() >= policy.forget_after_secs as i64
        {
            *e = Entry::default();
        }
        e.failures += 1;
        e.last_failure = Some(now);
        let over = e.failures.checked_sub(policy.free_failures)?;
        if over == 0 {
            return None;
        }
        let secs = policy
            .base_secs
            .saturating_mul(1u64 << (over - 1).min(30))
            .min(policy.max_secs);
        e.locked_until = Some(now + time::Duration::seconds(secs as i64));
        Some(secs)
    }

    pub fn succeed(&self, key: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(key);
        }
    }
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
