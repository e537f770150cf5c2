//! What search engines read: `/sitemap.xml` (home, categories, vendors, products, at most
//! the protocol's 50,000 addresses) built from the catalog's reads.

use super::blocking;
use crate::app::AppState;
use crate::services::catalog::queries::{self, ListQuery, SortParam};
use crate::web::{PageResult, WebError};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::collections::BTreeSet;

/// The sitemap protocol's limit per file.
const MAX_URLS: usize = 50_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/sitemap.xml", get(sitemap))
}

fn url(out: &mut String, loc: &str) {
    out.push_str("<url><loc>");
    crate::html::push_escaped(out, loc);
    out.push_str("</loc></url>\n");
}

/// Every address, built off the async threads (a large catalog pages through lists).
fn build(state: &AppState) -> crate::Result<String> {
    let base = state.config.public_url();
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    let mut n = 1;
    url(&mut out, &format!("{base}/"));
    for c in queries::categories(state)?
        .iter()
        .filter(|c| c.product_count > 0)
    {
        url(&mut out, &format!("{base}/c/{}", c.slug));
        n += 1;
    }
    let mut vendors = BTreeSet::new();
    let mut products = Vec::new();
    let mut cursor = None;
    loop {
        let page = queries::list(
            state,
            ListQuery {
                sort: Some(SortParam::Newest),
                limit: Some(100),
                cursor: cursor.take(),
                ..Default::default()
            },
        )?;
        for p in &page.items {
            vendors.insert(p.vendor.id.to_string());
            products.push(p.slug.clone());
        }
        match page.next_cursor {
            Some(c) if n + vendors.len() + products.len() < MAX_URLS => cursor = Some(c),
            _ => break,
        }
    }
    for v in &vendors {
        url(&mut out, &format!("{base}/v/{v}"));
        n += 1;
    }
    for slug in products.iter().take(MAX_URLS.saturating_sub(n)) {
        url(&mut out, &format!("{base}/p/{slug}"));
    }
    out.push_str("</urlset>\n");
    Ok(out)
}

async fn sitemap(State(state): State<AppState>) -> PageResult {
    let s = state.clone();
    let xml = blocking(move || build(&s)).await.map_err(WebError::from)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        xml,
    )
        .into_response())
}
