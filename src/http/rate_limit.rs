//! Per-client token buckets: `per_second` tokens refill continuously up to `burst`.
//! Memory is bounded: a full bucket is the same as no bucket, so idle clients are dropped,
//! and a flood of distinct addresses cannot grow the table past a fixed size.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// Per shard; 16 × 4096 clients ≈ a few MiB at most.
const MAX_PER_SHARD: usize = 4096;

pub struct RateLimiter {
    shards: Vec<Mutex<HashMap<u128, Bucket>>>,
    hasher: RandomState,
    per_second: f64,
    burst: f64,
    max_per_shard: usize,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self::with_capacity(per_second, burst, MAX_PER_SHARD)
    }

    fn with_capacity(per_second: u32, burst: u32, max_per_shard: usize) -> Self {
        RateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            max_per_shard: max_per_shard.max(2),
        }
    }

    /// Takes one token for `ip` at `now`; when none is left, says how long until one is.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = client_key(ip);
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        // A poisoned shard only means another request panicked mid-update; the data is
        // still a valid map of buckets, so keep limiting rather than failing open forever.
        let mut buckets = shard.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.max_per_shard && !buckets.contains_key(&key) {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    /// Number of clients tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    fn evict(&self, buckets: &mut HashMap<u128, Bucket>, now: Instant) {
        let (rate, burst) = (self.per_second, self.burst);
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
        });
        if buckets.len() < self.max_per_shard {
            return;
        }
        // Every tracked client is active: forget the least recently seen half. Each of them
        // regains a full burst, which is the price of a bounded table under a flood.
        let mut lasts: Vec<Instant> = buckets.values().map(|b| b.last).collect();
        let mid = lasts.len() / 2;
        let (_, median, _) = lasts.select_nth_unstable(mid);
        let median = *median;
        buckets.retain(|_, b| b.last > median);
    }
}

/// IPv4 addresses count one by one; IPv6 clients by /64, since one host usually owns a
/// whole /64 and could otherwise rotate addresses to escape the limit.
fn client_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) & !((1u128 << 64) - 1)) | (1u128 << 32),
        },
    }
}

/// The address a request is limited by. Behind a trusted proxy that is the right-most
/// `X-Forwarded-For` entry the proxies did not add themselves: entries further left were
/// written by the client and can be anything.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    forwarded_for
        .iter()
        .rev()
        .flat_map(|h| h.rsplit(','))
        .map(|s| s.trim().parse::<IpAddr>())
        .take_while(Result::is_ok)
        .flatten()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

/// Whole seconds for `Retry-After`, rounded up and never 0.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let rl = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.check(ip("10.0.0.1"), t0).is_ok());
        }
        let wait = rl.check(ip("10.0.0.1"), t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_secs(wait), 1);
        // Another client is not affected.
        assert!(rl.check(ip("10.0.0.2"), t0).is_ok());
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(rl.check(ip("10.0.0.1"), t1).is_ok());
        assert!(rl.check(ip("10.0.0.1"), t1).is_err());
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(rl.check(ip("10.0.0.1"), t2).is_ok());
        }
        assert!(rl.check(ip("10.0.0.1"), t2).is_err());
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let rl = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        assert!(rl.check(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(rl.check(ip("2001:db8:1:2::ffff"), t0).is_err());
        assert!(rl.check(ip("2001:db8:1:3::1"), t0).is_ok());
        // An IPv4-mapped address is the IPv4 client.
        assert!(rl.check(ip("192.0.2.7"), t0).is_ok());
        assert!(rl.check(ip("::ffff:192.0.2.7"), t0).is_err());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood() {
        let rl = RateLimiter::with_capacity(1, 5, 8);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i));
            let _ = rl.check(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(rl.tracked() <= SHARDS * 8, "{}", rl.tracked());
    }

    #[test]
    fn idle_clients_are_evicted_before_active_ones() {
        let rl = RateLimiter::with_capacity(10, 2, 4);
        let t0 = Instant::now();
        for i in 0..200u32 {
            let _ = rl.check(IpAddr::from((i + 1).to_be_bytes()), t0);
        }
        // A minute later every early client has refilled (idle); an active client empties
        // its bucket, and new clients arrive: the idle ones make room, the active one stays.
        let t1 = t0 + Duration::from_secs(60);
        let busy = ip("10.9.9.9");
        rl.check(busy, t1).unwrap();
        rl.check(busy, t1).unwrap();
        for i in 0..2u32 {
            let _ = rl.check(IpAddr::from((i + 1000).to_be_bytes()), t1);
        }
        assert!(rl.check(busy, t1).is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.5");
        let trusted = [proxy, ip("10.0.0.6")];
        // Not a proxy: the header is the client's own claim and is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &["1.2.3.4"], &trusted),
            ip("203.0.113.9")
        );
        // From the proxy: the right-most address the proxies did not add.
        assert_eq!(
            client_ip(proxy, &["1.2.3.4, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(proxy, &["198.51.100.7", "10.0.0.6"], &trusted),
            ip("198.51.100.7")
        );
        // Garbage stops the walk; missing header means the proxy itself.
        assert_eq!(client_ip(proxy, &["1.2.3.4, junk"], &trusted), proxy);
        assert_eq!(client_ip(proxy, &[], &trusted), proxy);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
