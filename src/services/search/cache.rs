//! Answers of recent searches, reused while neither the index (its searcher generation)
//! nor the catalog (the store's commit generation) has moved since they were computed,
//! so a popular query repeated within that window costs a lookup. A personalised search
//! is never cached; each reuse gets its own query id. It never decides what matches.

use super::SearchAnswer;
use super::request::{Affinity, SearchRequest};
use std::collections::HashMap;
use std::sync::Mutex;

/// Distinct requests remembered per generation; past it the cache starts over.
pub const CAPACITY: usize = 1024;

/// What an answer was computed from: the index's searcher generation and the store's
/// commit generation (categories and vendor names in facets come from the catalog).
pub type Stamp = (u64, u64);

#[derive(Default)]
pub struct AnswerCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    stamp: Stamp,
    answers: HashMap<String, SearchAnswer>,
}

/// The cache key of a request, or `None` when its answer depends on who asks.
pub fn key(req: &SearchRequest, affinity: &Affinity) -> Option<String> {
    let personal =
        req.personalize && !(affinity.categories.is_empty() && affinity.brands.is_empty());
    (!personal).then(|| format!("{req:?}"))
}

impl AnswerCache {
    /// The answer computed for `key` at `stamp`, with a fresh query id.
    pub fn get(&self, stamp: Stamp, key: &str) -> Option<SearchAnswer> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.stamp != stamp {
            return None;
        }
        let mut answer = inner.answers.get(key)?.clone();
        answer.query_id = uuid::Uuid::now_v7().to_string();
        Some(answer)
    }

    /// Remembers an answer computed at `stamp` (forgetting those of older stamps).
    pub fn put(&self, stamp: Stamp, key: String, answer: &SearchAnswer) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.stamp != stamp {
            // An answer computed before a newer one was stored is not kept: stamps only
            // move forward, so an older stamp never replaces a newer one's answers.
            if stamp < inner.stamp {
                return;
            }
            inner.stamp = stamp;
            inner.answers.clear();
        }
        if inner.answers.len() >= CAPACITY {
            inner.answers.clear();
        }
        inner.answers.insert(key, answer.clone());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn answer(total: u64) -> SearchAnswer {
        SearchAnswer {
            query_id: "q".into(),
            items: Vec::new(),
            total,
            total_exact: true,
            next_cursor: None,
            facets: Default::default(),
            query: Default::default(),
        }
    }

    #[test]
    fn answers_live_only_as_long_as_their_stamp() {
        let c = AnswerCache::default();
        c.put((1, 1), "a".into(), &answer(3));
        let got = c.get((1, 1), "a").unwrap();
        assert_eq!(got.total, 3);
        assert_ne!(got.query_id, "q", "each reuse gets its own query id");
        assert!(c.get((2, 1), "a").is_none(), "the index moved");
        assert!(c.get((1, 2), "a").is_none(), "the catalog moved");
        c.put((1, 2), "a".into(), &answer(4));
        c.put((1, 1), "b".into(), &answer(5));
        assert!(
            c.get((1, 1), "b").is_none(),
            "an older answer never comes back"
        );
        assert_eq!(c.get((1, 2), "a").unwrap().total, 4);
    }

    #[test]
    fn personalised_requests_are_not_cached() {
        let cfg = crate::config::SearchConfig::default();
        let pairs = vec![("q".to_string(), "mug".to_string())];
        let req = SearchRequest::parse(&pairs, &cfg).unwrap();
        let mut aff = Affinity::default();
        assert!(key(&req, &aff).is_some());
        aff.brands.insert("Acme".into());
        assert_eq!(key(&req, &aff).is_some(), !req.personalize);
        let other = SearchRequest::parse(&[("q".to_string(), "mugs".to_string())], &cfg).unwrap();
        assert_ne!(
            key(&req, &Affinity::default()),
            key(&other, &Affinity::default())
        );
    }
}
