//! Values derived from the store (read models, whole answers) kept between requests while
//! no write has been committed since: see [`Generation`]. The pages' read models
//! (`web::cache`) and the catalog's lists use it.

use super::Store;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

/// The store's commit generation, read before computing a value to cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Generation(u64);

impl Generation {
    /// Read this *before* opening the read transaction the value comes from.
    pub fn now(store: &Store) -> Generation {
        Generation(store.generation())
    }
}

/// Values by key, each valid for the generation it was computed at. Bounded: when full,
/// entries of older generations go first, then everything (the next pages refill it).
pub struct GenCache<K, V> {
    entries: RwLock<HashMap<K, (Generation, Arc<V>)>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V> GenCache<K, V> {
    pub fn new(capacity: usize) -> GenCache<K, V> {
        GenCache {
            entries: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The value stored for `key` at exactly generation `at`.
    pub fn get(&self, at: Generation, key: &K) -> Option<Arc<V>> {
        let map = self.entries.read().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((g, v)) if *g == at => Some(v.clone()),
            _ => None,
        }
    }

    /// Keeps `value`, computed from a snapshot taken after generation `at` was read,
    /// unless a value of a newer generation is already there.
    pub fn put(&self, at: Generation, key: K, value: Arc<V>) {
        let mut map = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some((g, _)) = map.get(&key)
            && *g > at
        {
            return;
        }
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (g, _)| *g >= at);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, (at, value));
    }

    /// The cached value for `key`, or `compute()`'s, kept for the next request.
    pub fn get_or_try<E>(
        &self,
        store: &Store,
        key: K,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        let at = Generation::now(store);
        if let Some(v) = self.get(at, &key) {
            return Ok(v);
        }
        let v = Arc::new(compute()?);
        self.put(at, key, v.clone());
        Ok(v)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_value_serves_only_its_own_generation() {
        let c: GenCache<&str, u32> = GenCache::new(4);
        c.put(Generation(3), "a", Arc::new(1));
        assert_eq!(c.get(Generation(3), &"a").as_deref(), Some(&1));
        assert_eq!(c.get(Generation(4), &"a"), None);
        assert_eq!(c.get(Generation(2), &"a"), None);
        assert_eq!(c.get(Generation(3), &"b"), None);
    }

    #[test]
    fn an_older_computation_never_replaces_a_newer_one() {
        let c: GenCache<&str, u32> = GenCache::new(4);
        c.put(Generation(5), "a", Arc::new(5));
        c.put(Generation(4), "a", Arc::new(4));
        assert_eq!(c.get(Generation(5), &"a").as_deref(), Some(&5));
        c.put(Generation(6), "a", Arc::new(6));
        assert_eq!(c.get(Generation(6), &"a").as_deref(), Some(&6));
    }

    #[test]
    fn a_full_cache_drops_old_generations_first_and_stays_bounded() {
        let c: GenCache<u32, u32> = GenCache::new(3);
        c.put(Generation(1), 1, Arc::new(1));
        c.put(Generation(2), 2, Arc::new(2));
        c.put(Generation(2), 3, Arc::new(3));
        c.put(Generation(2), 4, Arc::new(4));
        assert_eq!(c.get(Generation(1), &1), None);
        assert_eq!(c.get(Generation(2), &2).as_deref(), Some(&2));
        assert_eq!(c.get(Generation(2), &4).as_deref(), Some(&4));
        for k in 10..20 {
            c.put(Generation(2), k, Arc::new(k));
            assert!(c.entries.read().unwrap().len() <= 3);
        }
        assert_eq!(c.get(Generation(2), &19).as_deref(), Some(&19));
    }
}
