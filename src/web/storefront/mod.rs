//! The storefront's pages: home, category and search results, product, vendor store,
//! cart and checkout, plus robots.txt and the sitemap. Each handler reads through the
//! services (catalog, search, orders, payments) and renders one template; none opens a
//! table or calls our own HTTP API.

pub mod account;
mod browse;
mod cart;
mod checkout;
mod checkout_steps;
mod product;
pub(crate) mod product_cache;
mod seo;
mod vendors;

pub use browse::Card;

use super::{Page, PageResult, render};
use crate::app::AppState;
use crate::services::catalog::queries::{self, ListQuery, SortParam};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

/// The storefront's templates, embedded.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "storefront/home.html",
        include_str!("../../../templates/storefront/home.html"),
    ),
    (
        "storefront/results.html",
        include_str!("../../../templates/storefront/results.html"),
    ),
    (
        "storefront/product.html",
        include_str!("../../../templates/storefront/product.html"),
    ),
    (
        "storefront/cart.html",
        include_str!("../../../templates/storefront/cart.html"),
    ),
    (
        "storefront/checkout.html",
        include_str!("../../../templates/storefront/checkout.html"),
    ),
    (
        "storefront/confirm.html",
        include_str!("../../../templates/storefront/confirm.html"),
    ),
    (
        "storefront/done.html",
        include_str!("../../../templates/storefront/done.html"),
    ),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/robots.txt", get(robots))
        .merge(browse::router())
        .merge(product::router())
        .merge(cart::router())
        .merge(checkout::router())
        .merge(seo::router())
}

/// Runs CPU-bound service reads (search, lists) off the async threads (`crate::cpu`).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> crate::Result<T> {
    crate::cpu::run("page", f).await
}

#[derive(Serialize)]
struct HomePage {
    featured: Vec<browse::Card>,
    trending: Vec<browse::Card>,
    categories: Vec<queries::CategoryView>,
    vendors: Vec<browse::FacetValue>,
}

async fn home(State(state): State<AppState>, page: Page) -> PageResult {
    let s = state.clone();
    let featured = blocking(move || {
        queries::list(
            &s,
            ListQuery {
                sort: Some(SortParam::Newest),
                limit: Some(8),
                in_stock: Some(true),
                ..Default::default()
            },
        )
    })
    .await?
    .items
    .iter()
    .map(browse::Card::from)
    .collect();
    let tree = super::cache::category_tree(&state)?;
    let mut categories: Vec<_> = tree
        .all
        .iter()
        .filter(|c| c.depth == 0 && c.product_count > 0)
        .cloned()
        .collect();
    categories.sort_by_key(|c| std::cmp::Reverse(c.product_count));
    categories.truncate(8);
    // The home page still serves while search rebuilds: trending and vendors wait.
    let (trending, vendors) = vendors::trending(&state, 8).await.unwrap_or_default();
    render(
        &state,
        &page,
        "storefront/home.html",
        HomePage {
            featured,
            trending,
            categories,
            vendors,
        },
    )
}

async fn robots(State(state): State<AppState>) -> impl IntoResponse {
    let base = state.config.public_url();
    let body = format!(
        "User-agent: *\nDisallow: /cart\nDisallow: /checkout\nDisallow: /account\nDisallow: /signin\nDisallow: /register\nDisallow: /api/\nAllow: /\n\nSitemap: {base}/sitemap.xml\n"
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
}
