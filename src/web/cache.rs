//! Derived read models the pages show on almost every request (the category tree behind
//! the layout's menu and the breadcrumbs, the related products of a category), kept
//! between requests and recomputed when the store has committed a write since.
//!
//! The key is [`crate::store::Store::generation`]: a counter the writer moves before any
//! writer hears "ok". A page reads it (with [`Generation::now`]) *before* it opens the
//! read transaction a value is computed from, and reuses a cached value only while the
//! counter still shows the number the value was stored under. So a value is never older
//! than the newest write a client has been told about: a renamed category, a new product
//! or a stock change shows on the very next page. Between writes every page shares one
//! computation; after one, the first pages recompute (concurrently if they race: the
//! value is the same, and the newest generation wins).

use crate::app::AppState;
use crate::error::Result;
use crate::services::catalog::model::{CategoryId, ProductId};
use crate::services::catalog::queries::{self, CategoryView};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

/// How many categories' related-product lists are kept at once.
const RELATED_CAPACITY: usize = 4096;
/// How many guest product page contexts are kept at once.
const PRODUCT_PAGE_CAPACITY: usize = 2048;
/// Products a related list holds: six to show, one more in case the page's own is there.
pub const RELATED_LEN: usize = 7;

/// The page layer's cached read models (one per app: each store has its own generation).
pub struct ReadModels {
    tree: GenCache<(), CategoryTree>,
    related: GenCache<CategoryId, Vec<(ProductId, crate::web::storefront::Card)>>,
    /// A guest's product page context by (slug, asked variant): nothing in it depends on
    /// who the guest is.
    pub(crate) product_pages: GenCache<(String, Option<String>), (ProductId, minijinja::Value)>,
    /// The same pages rendered for a guest with no cart or flash (the CSRF token a
    /// marker): what a first-time visitor or a crawler gets.
    pub(crate) product_html: GenCache<(String, Option<String>), (ProductId, String)>,
}

impl Default for ReadModels {
    fn default() -> ReadModels {
        ReadModels {
            tree: GenCache::new(1),
            related: GenCache::new(RELATED_CAPACITY),
            product_pages: GenCache::new(PRODUCT_PAGE_CAPACITY),
            product_html: GenCache::new(PRODUCT_PAGE_CAPACITY),
        }
    }
}

/// The whole category tree (parents before children), with the layout's menu.
pub struct CategoryTree {
    pub all: Vec<CategoryView>,
    /// The top-level categories, as the layout's `menu` shows them.
    pub menu: minijinja::Value,
}

impl CategoryTree {
    pub fn by_slug(&self, slug: &str) -> Option<&CategoryView> {
        self.all.iter().find(|c| c.slug == slug)
    }
}

/// The category tree as of the newest write.
pub fn category_tree(state: &AppState) -> Result<Arc<CategoryTree>> {
    state.web.reads.tree.get_or_try(state, (), || {
        let all = queries::categories(state)?;
        let menu: Vec<minijinja::Value> = all
            .iter()
            .filter(|c| c.depth == 0)
            .map(|c| minijinja::context! { name => c.name.clone(), slug => c.slug.clone() })
            .collect();
        Ok(CategoryTree {
            all,
            menu: minijinja::Value::from(menu),
        })
    })
}

/// The newest products of a category as cards (at most [`RELATED_LEN`]), as of the
/// newest write. The list is read off the async threads on a miss.
pub async fn related(
    state: &AppState,
    category: CategoryId,
) -> Result<Arc<Vec<(ProductId, crate::web::storefront::Card)>>> {
    let at = Generation::now(state);
    if let Some(v) = state.web.reads.related.get(at, &category) {
        return Ok(v);
    }
    let s = state.clone();
    let list = crate::web::storefront::blocking(move || {
        queries::list(
            &s,
            queries::ListQuery {
                category: Some(category.to_string()),
                limit: Some(RELATED_LEN),
                ..Default::default()
            },
        )
    })
    .await?;
    let cards = Arc::new(
        list.items
            .iter()
            .map(|p| (p.id, crate::web::storefront::Card::from(p)))
            .collect::<Vec<_>>(),
    );
    state.web.reads.related.put(at, category, cards.clone());
    Ok(cards)
}

/// The store's commit generation, read before computing a value to cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Generation(u64);

impl Generation {
    /// Read this *before* opening the read transaction the value comes from.
    pub fn now(state: &AppState) -> Generation {
        Generation(state.store.generation())
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
        state: &AppState,
        key: K,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        let at = Generation::now(state);
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
