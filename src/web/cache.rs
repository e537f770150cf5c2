//! Derived read models the pages show on almost every request (the category tree behind
//! the layout's menu and the breadcrumbs, the related products of a category), kept
//! between requests and recomputed when the store has committed a write since.
//!
//! The key is [`crate::store::Store::generation`]: a counter the writer moves before any
//! writer hears "ok". A page reads it (with [`Generation::now`], see `src/store/cache.rs`) *before* it opens the
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
use std::sync::Arc;

pub use crate::store::cache::{GenCache, Generation};

/// How many categories' related-product lists are kept at once.
const RELATED_CAPACITY: usize = 4096;
/// How many rendered product pages are kept at once.
const PRODUCT_PAGE_CAPACITY: usize = 2048;
/// How many carts' item counts are kept at once.
const CART_COUNT_CAPACITY: usize = 16_384;
/// Products a related list holds: six to show, one more in case the page's own is there.
pub const RELATED_LEN: usize = 7;

/// The page layer's cached read models (one per app: each store has its own generation).
pub struct ReadModels {
    tree: GenCache<(), CategoryTree>,
    related: GenCache<CategoryId, Vec<(ProductId, crate::web::storefront::Card)>>,
    /// Product pages rendered once for every viewer, their own parts filled in per
    /// request (`storefront/product_cache.rs`).
    pub(crate) product_html: GenCache<
        crate::web::storefront::product_cache::Key,
        crate::web::storefront::product_cache::Kept,
    >,
    /// The header's cart count by cart (`u<user id>` or `g<guest token>`).
    pub(crate) cart_counts: GenCache<String, i64>,
}

impl Default for ReadModels {
    fn default() -> ReadModels {
        ReadModels {
            tree: GenCache::new(1),
            related: GenCache::new(RELATED_CAPACITY),
            product_html: GenCache::new(PRODUCT_PAGE_CAPACITY),
            cart_counts: GenCache::new(CART_COUNT_CAPACITY),
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
    state.web.reads.tree.get_or_try(&state.store, (), || {
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
    let at = Generation::now(&state.store);
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
