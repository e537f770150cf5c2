//! A circuit breaker for outbound calls: after `failures` consecutive failures it opens
//! and refuses calls for `open_for`, then lets `half_open_tries` trial calls through;
//! all succeeding closes it, any failing opens it again. Time comes from the `Clock` so
//! tests move it instead of sleeping. It never retries a call itself.

use crate::clock::Clock;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: OffsetDateTime,
    },
    /// `started` trial calls let through so far, `passed` of them succeeded.
    HalfOpen {
        started: u32,
        passed: u32,
    },
}

pub struct Breaker {
    name: String,
    failures: u32,
    open_for: Duration,
    half_open_tries: u32,
    clock: Clock,
    inner: Mutex<Inner>,
}

/// Refused because the breaker is open; retry after the given number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    pub retry_after_secs: u64,
}

impl Breaker {
    pub fn new(
        name: impl Into<String>,
        failures: u32,
        open_for: Duration,
        half_open_tries: u32,
        clock: Clock,
    ) -> Breaker {
        Breaker {
            name: name.into(),
            failures: failures.max(1),
            open_for,
            half_open_tries: half_open_tries.max(1),
            clock,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves a consistent state (plain fields), so a
        // poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if self.clock.now() >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make one call; `Err` while open (or while the half-open trials are taken).
    pub fn acquire(&self) -> Result<(), Open> {
        let now = self.clock.now();
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Ok(()),
            Inner::Open { until } if now >= until => {
                *inner = Inner::HalfOpen {
                    started: 1,
                    passed: 0,
                };
                Ok(())
            }
            Inner::Open { until } => Err(Open {
                retry_after_secs: (until - now).whole_seconds().max(1) as u64,
            }),
            Inner::HalfOpen { started, passed } if started < self.half_open_tries => {
                *inner = Inner::HalfOpen {
                    started: started + 1,
                    passed,
                };
                Ok(())
            }
            Inner::HalfOpen { .. } => Err(Open {
                retry_after_secs: 1,
            }),
        }
    }

    /// Whether a call would be let through now, without taking a half-open trial slot:
    /// for refusing early, before any work that a refused call would waste.
    pub fn check(&self) -> Result<(), Open> {
        let now = self.clock.now();
        match *self.lock() {
            Inner::Open { until } if now < until => Err(Open {
                retry_after_secs: (until - now).whole_seconds().max(1) as u64,
            }),
            Inner::HalfOpen { started, .. } if started >= self.half_open_tries => Err(Open {
                retry_after_secs: 1,
            }),
            _ => Ok(()),
        }
    }

    /// Reports how an acquired call went.
    pub fn record(&self, ok: bool) {
        let now = self.clock.now();
        let mut inner = self.lock();
        let next = match (&*inner, ok) {
            (Inner::Closed { .. }, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) if failures + 1 >= self.failures => {
                tracing::warn!(breaker = %self.name, "circuit breaker opened");
                Inner::Open {
                    until: now + self.open_for,
                }
            }
            (Inner::Closed { failures }, false) => Inner::Closed {
                failures: failures + 1,
            },
            (Inner::HalfOpen { started, passed }, true) => {
                if passed + 1 >= self.half_open_tries {
                    tracing::info!(breaker = %self.name, "circuit breaker closed");
                    Inner::Closed { failures: 0 }
                } else {
                    Inner::HalfOpen {
                        started: *started,
                        passed: passed + 1,
                    }
                }
            }
            (Inner::HalfOpen { .. }, false) => Inner::Open {
                until: now + self.open_for,
            },
            // A call acquired before the breaker opened finished late: nothing changes.
            (Inner::Open { until }, _) => Inner::Open { until: *until },
        };
        *inner = next;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn breaker(clock: &Clock) -> Breaker {
        Breaker::new("test", 5, Duration::seconds(60), 3, clock.clone())
    }

    #[test]
    fn opens_after_five_consecutive_failures_only() {
        let clock = Clock::default();
        let b = breaker(&clock);
        for _ in 0..4 {
            b.acquire().unwrap();
            b.record(false);
        }
        // A success resets the count.
        b.acquire().unwrap();
        b.record(true);
        for _ in 0..4 {
            b.acquire().unwrap();
            b.record(false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.acquire().unwrap();
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
        let open = b.acquire().unwrap_err();
        assert!(open.retry_after_secs <= 60 && open.retry_after_secs >= 59);
    }

    #[test]
    fn half_open_lets_three_tries_through_then_closes() {
        let clock = Clock::default();
        let b = breaker(&clock);
        for _ in 0..5 {
            b.acquire().unwrap();
            b.record(false);
        }
        clock.advance(Duration::seconds(59));
        assert!(b.check().is_err());
        assert!(b.acquire().is_err());
        clock.advance(Duration::seconds(1));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        for _ in 0..3 {
            b.acquire().unwrap();
        }
        // A fourth concurrent trial is refused.
        assert!(b.check().is_err());
        assert!(b.acquire().is_err());
        for _ in 0..3 {
            b.record(true);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.acquire().unwrap();
    }

    #[test]
    fn a_failed_trial_opens_it_again() {
        let clock = Clock::default();
        let b = breaker(&clock);
        for _ in 0..5 {
            b.acquire().unwrap();
            b.record(false);
        }
        clock.advance(Duration::seconds(61));
        b.acquire().unwrap();
        b.record(true);
        b.acquire().unwrap();
        b.record(false);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.acquire().is_err());
        clock.advance(Duration::seconds(61));
        assert!(b.acquire().is_ok());
    }
}
