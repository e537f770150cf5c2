//! Time-decayed counters for "trending now", and the popular past queries suggestions
//! draw on. Pure bookkeeping over events the analytics consumer hands in; bounded in
//! memory (old and faint entries are pruned), no I/O.

use super::query::typo_match;
use std::collections::HashMap;

/// Exponentially decayed counts: every unit of weight halves each `half_life_secs`, and
/// keys not seen within `horizon_secs` are out of the window.
pub struct Decayed {
    half_life_secs: f64,
    horizon_secs: i64,
    /// key → (score as of `last`, `last` = the latest event time in unix seconds)
    entries: HashMap<String, (f64, i64)>,
}

/// Keys one window keeps at most; past it, stale and then the faintest keys go.
const MAX_KEYS: usize = 50_000;

impl Decayed {
    pub fn new(half_life_secs: i64, horizon_secs: i64) -> Decayed {
        Decayed {
            half_life_secs: half_life_secs.max(1) as f64,
            horizon_secs,
            entries: HashMap::new(),
        }
    }

    fn factor(&self, dt: i64) -> f64 {
        0.5f64.powf(dt.max(0) as f64 / self.half_life_secs)
    }

    /// Adds `weight` at time `t` (events may arrive out of order across partitions).
    pub fn add(&mut self, key: &str, weight: f64, t: i64) {
        if self.entries.len() >= MAX_KEYS && !self.entries.contains_key(key) {
            self.prune(t);
        }
        let f = |dt| self.factor(dt);
        let (score, last) = self.entries.get(key).copied().unwrap_or((0.0, t));
        let updated = if t >= last {
            (score * f(t - last) + weight, t)
        } else {
            (score + weight * f(last - t), last)
        };
        self.entries.insert(key.to_string(), updated);
    }

    /// The `n` highest scores as of `now` among keys seen within the horizon.
    /// Linear in the keys held (up to `MAX_KEYS`): only the `n` winners are sorted and
    /// copied, since a shop's long tail of one-off queries is most of them.
    pub fn top(&self, now: i64, n: usize) -> Vec<(String, f64)> {
        let order = |a: &(&str, f64), b: &(&str, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(b.0));
        let mut v: Vec<(&str, f64)> = self
            .entries
            .iter()
            .filter(|(_, (_, last))| now - *last <= self.horizon_secs)
            .map(|(k, (s, last))| (k.as_str(), s * self.factor(now - *last)))
            .filter(|(_, s)| *s > 0.0)
            .collect();
        if n > 0 && v.len() > n {
            v.select_nth_unstable_by(n - 1, order);
        }
        v.truncate(n);
        v.sort_by(order);
        v.into_iter().map(|(k, s)| (k.to_string(), s)).collect()
    }

    /// Drops keys outside the horizon; if still full, the faintest quarter.
    fn prune(&mut self, now: i64) {
        let horizon = self.horizon_secs;
        self.entries.retain(|_, (_, last)| now - *last <= horizon);
        if self.entries.len() >= MAX_KEYS {
            let mut scores: Vec<f64> = self
                .entries
                .values()
                .map(|(s, last)| s * self.factor(now - *last))
                .collect();
            scores.sort_by(f64::total_cmp);
            let cut = scores.get(scores.len() / 4).copied().unwrap_or(0.0);
            let hl = self.half_life_secs;
            self.entries
                .retain(|_, (s, last)| *s * 0.5f64.powf((now - *last).max(0) as f64 / hl) > cut);
        }
    }
}

/// Half-life and window of the "last hours" list: one hour, six hours.
pub const HOURS: (i64, i64) = (3_600, 6 * 3_600);
/// Half-life and window of the "last day" list: six hours, a day.
pub const DAY: (i64, i64) = (6 * 3_600, 24 * 3_600);

/// Trending queries (searches that found something) and products (views, search
/// feedback, orders), each over the last hours and the last day.
pub struct Trending {
    pub queries_hours: Decayed,
    pub queries_day: Decayed,
    pub products_hours: Decayed,
    pub products_day: Decayed,
}

impl Default for Trending {
    fn default() -> Self {
        Trending {
            queries_hours: Decayed::new(HOURS.0, HOURS.1),
            queries_day: Decayed::new(DAY.0, DAY.1),
            products_hours: Decayed::new(HOURS.0, HOURS.1),
            products_day: Decayed::new(DAY.0, DAY.1),
        }
    }
}

impl Trending {
    pub fn query(&mut self, q: &str, t: i64) {
        self.queries_hours.add(q, 1.0, t);
        self.queries_day.add(q, 1.0, t);
    }

    pub fn product(&mut self, id: &str, weight: f64, t: i64) {
        self.products_hours.add(id, weight, t);
        self.products_day.add(id, weight, t);
    }
}

/// Searches that found something, per normalised query, for suggestions. Only queries
/// searched at least `min` times are ever suggested, so one shopper's odd (or private)
/// search is never shown to others.
#[derive(Default)]
pub struct Popular {
    counts: HashMap<String, u64>,
}

/// Distinct queries remembered at most; past it, those searched once are forgotten.
const MAX_POPULAR: usize = 100_000;

impl Popular {
    pub fn add(&mut self, q: &str) {
        if self.counts.len() >= MAX_POPULAR && !self.counts.contains_key(q) {
            let floor = self.counts.values().copied().min().unwrap_or(0);
            self.counts.retain(|_, c| *c > floor);
        }
        *self.counts.entry(q.to_string()).or_default() += 1;
    }

    /// The queries searched (with results) at least `min` times, with their counts.
    pub fn eligible(&self, min: u64) -> Vec<(String, u64)> {
        self.counts
            .iter()
            .filter(|(_, c)| **c >= min)
            .map(|(q, c)| (q.clone(), *c))
            .collect()
    }

    /// Up to `n` popular queries the typed text leads to, most searched first.
    pub fn suggest(&self, typed: &str, min: u64, n: usize) -> Vec<String> {
        let typed_words = words(typed);
        if typed_words.is_empty() || n == 0 {
            return Vec::new();
        }
        let last_complete = typed.ends_with(char::is_whitespace);
        let mut hits: Vec<(&String, u64)> = self
            .counts
            .iter()
            .filter(|(_, c)| **c >= min)
            .filter(|(q, _)| leads_to(&typed_words, last_complete, &words(q)))
            .map(|(q, c)| (q, *c))
            .collect();
        hits.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.len().cmp(&b.0.len()))
                .then_with(|| a.0.cmp(b.0))
        });
        hits.into_iter().take(n).map(|(q, _)| q.clone()).collect()
    }
}

/// Lower-cased words (letters and digits).
pub fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether a past query (`candidate`'s words) completes what was typed: every typed word
/// matches one of its words exactly or within the typo rule, the last one (while still
/// being typed) also as a prefix, typos allowed in that prefix.
pub fn leads_to(typed: &[String], last_complete: bool, candidate: &[String]) -> bool {
    let Some((last, rest)) = typed.split_last() else {
        return false;
    };
    let whole = |w: &str| {
        candidate
            .iter()
            .any(|c| c == w || typo_match(w, c).is_some())
    };
    if !rest.iter().all(|w| whole(w)) {
        return false;
    }
    if last_complete {
        return whole(last);
    }
    let n = last.chars().count();
    candidate.iter().any(|c| {
        c.starts_with(last.as_str()) || typo_match(last, c).is_some() || {
            let prefix: String = c.chars().take(n).collect();
            prefix.chars().count() == n && typo_match(last, &prefix).is_some()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_halves_per_half_life_and_the_window_ends() {
        let mut d = Decayed::new(3_600, 6 * 3_600);
        d.add("a", 4.0, 0);
        d.add("b", 1.0, 3_600);
        let top = d.top(3_600, 10);
        assert_eq!(top[0].0, "a");
        assert!((top[0].1 - 2.0).abs() < 1e-9);
        // out of order: an older event adds its decayed weight
        d.add("b", 2.0, 0);
        assert!((d.top(3_600, 10)[0].1 - 2.0).abs() < 1e-9);
        assert!(d.top(7 * 3_600 + 1, 10).is_empty(), "past the window");
    }

    #[test]
    fn the_top_n_are_the_highest_scores_with_ties_by_key() {
        let mut d = Decayed::new(3_600, 6 * 3_600);
        for i in 0..500u32 {
            // Many equal scores, so ties decide most places.
            d.add(&format!("q{i:03}"), f64::from(i % 7), 0);
        }
        let mut all = d.top(0, usize::MAX);
        assert_eq!(all.len(), 500 - 72, "zero scores are not trending");
        for w in all.windows(2) {
            assert!(w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0));
        }
        for n in [0, 1, 10, 71, 72, 73, 428, 1000] {
            let mut expected = all.clone();
            expected.truncate(n);
            assert_eq!(d.top(0, n), expected, "n = {n}");
        }
        all.truncate(3);
        assert_eq!(all[0].0, "q006");
    }

    #[test]
    fn popular_queries_complete_typed_text_with_typos() {
        let mut p = Popular::default();
        for _ in 0..3 {
            p.add("bluetooth speaker");
        }
        for _ in 0..5 {
            p.add("blue dress");
        }
        p.add("bluetooth secret");
        assert_eq!(
            p.suggest("blu", 2, 10),
            vec!["blue dress", "bluetooth speaker"]
        );
        assert_eq!(p.suggest("blutooth sp", 2, 10), vec!["bluetooth speaker"]);
        assert_eq!(p.suggest("bluetoth", 2, 10), vec!["bluetooth speaker"]);
        assert!(
            p.suggest("bluetooth secret", 2, 10).is_empty(),
            "searched once"
        );
        assert!(p.suggest("xlu", 2, 10).is_empty(), "first letter exact");
        assert_eq!(p.suggest("blu", 2, 1).len(), 1);
    }
}
