//! Answers of recent searches, reused while neither the index (its searcher generation)
//! nor the catalog (the store's commit generation) has moved since they were computed,
//! so a popular query repeated within that window costs a lookup. A personalised search
//! is never cached; each reuse gets its own query id. It never decides what matches.

use super::request::{Affinity, SearchRequest};
use super::{Computed, SearchAnswer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Distinct requests remembered per generation; past it the cache starts over.
pub const CAPACITY: usize = 1024;

/// What an answer was computed from: the index's searcher generation and the store's
/// commit generation (categories and vendor names in facets come from the catalog).
pub type Stamp = (u64, u64);

#[derive(Default)]
pub struct AnswerCache {
    inner: Mutex<Inner>,
}

/// Answers are kept behind an `Arc`: a reuse shares the computed part and only gets its
/// own query id. The request itself (every parameter, parsed) is the key.
#[derive(Default)]
struct Inner {
    stamp: Stamp,
    answers: HashMap<SearchRequest, Arc<Computed>>,
}

/// Whether a request's answer may be reused: not when it depends on who asks.
pub fn cacheable(req: &SearchRequest, affinity: &Affinity) -> bool {
    !(req.personalize && !(affinity.categories.is_empty() && affinity.brands.is_empty()))
}

impl AnswerCache {
    /// The answer computed for `req` at `stamp`, with a fresh query id.
    pub fn get(&self, stamp: Stamp, req: &SearchRequest) -> Option<SearchAnswer> {
        let computed = {
            let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if inner.stamp != stamp {
                return None;
            }
            inner.answers.get(req)?.clone()
        };
        Some(SearchAnswer {
            query_id: uuid::Uuid::now_v7().to_string(),
            computed,
        })
    }

    /// Remembers an answer computed at `stamp` (forgetting those of older stamps).
    pub fn put(&self, stamp: Stamp, req: &SearchRequest, answer: &Arc<Computed>) {
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
        inner.answers.insert(req.clone(), answer.clone());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn answer(total: u64) -> Arc<Computed> {
        Arc::new(Computed {
            items: Vec::new(),
            total,
            total_exact: true,
            next_cursor: None,
            facets: Default::default(),
            query: Default::default(),
        })
    }

    fn req(q: &str) -> SearchRequest {
        let cfg = crate::config::SearchConfig::default();
        SearchRequest::parse(&[("q".to_string(), q.to_string())], &cfg).unwrap()
    }

    #[test]
    fn answers_live_only_as_long_as_their_stamp() {
        let c = AnswerCache::default();
        let (a, b) = (req("a"), req("b"));
        let computed = answer(3);
        c.put((1, 1), &a, &computed);
        let got = c.get((1, 1), &a).unwrap();
        assert_eq!(got.total, 3);
        assert!(Arc::ptr_eq(&got.computed, &computed), "shared, not copied");
        let again = c.get((1, 1), &a).unwrap();
        assert_ne!(
            got.query_id, again.query_id,
            "each reuse gets its own query id"
        );
        assert!(c.get((2, 1), &a).is_none(), "the index moved");
        assert!(c.get((1, 2), &a).is_none(), "the catalog moved");
        c.put((1, 2), &a, &answer(4));
        c.put((1, 1), &b, &answer(5));
        assert!(
            c.get((1, 1), &b).is_none(),
            "an older answer never comes back"
        );
        assert_eq!(c.get((1, 2), &a).unwrap().total, 4);
    }

    #[test]
    fn every_parameter_is_part_of_the_key() {
        let cfg = crate::config::SearchConfig::default();
        let parse = |q: &str| {
            let pairs: Vec<(String, String)> =
                form_urlencoded::parse(q.as_bytes()).into_owned().collect();
            SearchRequest::parse(&pairs, &cfg).unwrap()
        };
        let c = AnswerCache::default();
        let base = "q=mug&facets=brand";
        c.put((1, 1), &parse(base), &answer(1));
        assert!(c.get((1, 1), &parse(base)).is_some());
        for other in [
            "q=mugs&facets=brand",
            "q=mug&facets=brand,price",
            "q=mug&facets=brand&sort=price_asc",
            "q=mug&facets=brand&in_stock=true",
            "q=mug&facets=brand&page=2",
            "q=mug&facets=brand&limit=5",
            "q=mug&facets=brand&brand=Acme",
            "q=mug&facets=brand&vendor=v",
            "q=mug&facets=brand&category=c",
            "q=mug&facets=brand&price=1..2",
            "q=mug&facets=brand&attr=color:red",
            "q=mug&facets=brand&personalize=false",
        ] {
            let r = parse(other);
            if r != parse(base) {
                assert!(c.get((1, 1), &r).is_none(), "{other}");
            }
        }
    }

    #[test]
    fn personalised_requests_are_not_cached() {
        let cfg = crate::config::SearchConfig::default();
        let pairs = vec![("q".to_string(), "mug".to_string())];
        let req = SearchRequest::parse(&pairs, &cfg).unwrap();
        let mut aff = Affinity::default();
        assert!(cacheable(&req, &aff));
        aff.brands.insert("Acme".into());
        assert_eq!(cacheable(&req, &aff), !req.personalize);
    }
}
