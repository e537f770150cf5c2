//! Popular past queries for suggestions, from a snapshot of the analytics' counts taken
//! at most every [`REFRESH`] (so a query that becomes popular is suggested within a
//! second): only queries searched often enough, already split into words, ranked, and
//! grouped by the first letters of their words, so a request looks only at the queries
//! that could match its last word, best first, and stops at the `n` it needs. Matching is
//! `trending::leads_to`, as before; this only avoids scanning and splitting every
//! remembered query under the analytics lock on every keystroke.

use super::analytics::Analytics;
use super::trending::{leads_to, words};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

/// How old a snapshot may get before a request takes a new one.
pub const REFRESH: Duration = Duration::from_millis(250);

/// Popular queries as of one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    taken: Option<(Instant, u64)>,
    /// (query, its words), most searched first, then shorter, then alphabetical.
    entries: Vec<(String, Vec<String>)>,
    /// First letter of any of a query's words → its entries, in rank order.
    by_letter: HashMap<char, Vec<u32>>,
}

impl Snapshot {
    /// From (query, searches) pairs, all of them suggestible.
    pub fn new(mut counts: Vec<(String, u64)>) -> Snapshot {
        counts.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.len().cmp(&b.0.len()))
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut s = Snapshot::default();
        for (i, (q, _)) in counts.into_iter().enumerate() {
            let w = words(&q);
            let mut letters: Vec<char> = w.iter().filter_map(|x| x.chars().next()).collect();
            letters.sort_unstable();
            letters.dedup();
            for l in letters {
                s.by_letter.entry(l).or_default().push(i as u32);
            }
            s.entries.push((q, w));
        }
        s
    }

    /// Up to `n` queries the typed text leads to, best first.
    pub fn suggest(&self, typed: &str, n: usize) -> Vec<String> {
        let typed_words = words(typed);
        let Some(first) = typed_words.last().and_then(|w| w.chars().next()) else {
            return Vec::new();
        };
        let last_complete = typed.ends_with(char::is_whitespace);
        // Every way the last word can match (itself, a typo, a completion) keeps its first
        // letter, so only queries with a word starting with it can be led to.
        let Some(bucket) = self.by_letter.get(&first) else {
            return Vec::new();
        };
        bucket
            .iter()
            .filter_map(|i| self.entries.get(*i as usize))
            .filter(|(_, w)| leads_to(&typed_words, last_complete, w))
            .take(n)
            .map(|(q, _)| q.clone())
            .collect()
    }

    fn fresh(&self, min: u64, now: Instant) -> bool {
        self.taken
            .is_some_and(|(at, m)| m == min && now.saturating_duration_since(at) < REFRESH)
    }
}

/// The current snapshot, and who is taking the next one.
#[derive(Default)]
pub struct PopularQueries {
    current: Mutex<Arc<Snapshot>>,
    refreshing: Mutex<()>,
}

impl PopularQueries {
    /// Up to `n` past queries searched at least `min` times that `typed` leads to.
    pub fn suggest(&self, analytics: &Analytics, typed: &str, min: u64, n: usize) -> Vec<String> {
        if n == 0 {
            return Vec::new();
        }
        self.snapshot(analytics, min).suggest(typed, n)
    }

    fn snapshot(&self, analytics: &Analytics, min: u64) -> Arc<Snapshot> {
        let now = Instant::now();
        let current = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if current.fresh(min, now) {
            return current;
        }
        // One request takes the new snapshot; the others meanwhile use the previous one
        // (unless there is none yet).
        let _taking = match self.refreshing.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) if current.taken.is_some() => return current,
            Err(TryLockError::WouldBlock) => {
                self.refreshing.lock().unwrap_or_else(|p| p.into_inner())
            }
        };
        let again = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if again.fresh(min, Instant::now()) {
            return again;
        }
        let mut next = Snapshot::new(analytics.popular_queries(min));
        next.taken = Some((now, min));
        let next = Arc::new(next);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = next.clone();
        next
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn snap(list: &[(&str, u64)]) -> Snapshot {
        Snapshot::new(list.iter().map(|(q, n)| (q.to_string(), *n)).collect())
    }

    #[test]
    fn most_searched_first_typos_and_prefixes_allowed() {
        let s = snap(&[
            ("bluetooth speaker", 5),
            ("bluetooth headphones", 9),
            ("blue dress", 5),
            ("speaker stand", 7),
        ]);
        assert_eq!(
            s.suggest("blutooth sp", 3),
            vec!["bluetooth speaker"],
            "a typo in a finished word, the last one a prefix"
        );
        assert_eq!(
            s.suggest("blue", 3),
            vec!["bluetooth headphones", "blue dress", "bluetooth speaker"],
            "by searches, then the shorter"
        );
        assert_eq!(s.suggest("blue", 1), vec!["bluetooth headphones"]);
        // The last word matched anywhere in the query, not only at its start.
        assert_eq!(
            s.suggest("spe", 5),
            vec!["speaker stand", "bluetooth speaker"]
        );
        assert!(s.suggest("blue ", 5).contains(&"blue dress".to_string()));
        assert!(
            !s.suggest("blue ", 5)
                .contains(&"bluetooth speaker".to_string()),
            "a finished word is not a prefix"
        );
        assert!(s.suggest("zebra", 3).is_empty());
        assert!(s.suggest("  ", 3).is_empty());
    }

    #[test]
    fn snapshots_are_reused_until_they_age_or_the_threshold_changes() {
        let s = Snapshot {
            taken: Some((Instant::now(), 3)),
            ..Snapshot::default()
        };
        let now = Instant::now();
        assert!(s.fresh(3, now));
        assert!(!s.fresh(2, now));
        assert!(!s.fresh(3, now + REFRESH));
        assert!(!Snapshot::default().fresh(3, now), "never taken");
    }
}
