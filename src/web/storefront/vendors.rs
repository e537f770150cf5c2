//! The vendor's store page (its profile over the same result list as search) and the home
//! page's shelves that come from the search engine (trending products, top vendors).

use super::blocking;
use super::browse::{Browse, Card, FacetValue, build, facet_list, run_search};
use crate::app::AppState;
use crate::services::search::{self, SearchRequest, request::Affinity};
use crate::web::{Page, PageResult, WebError, render};
use axum::extract::{Path, RawQuery, State};

/// Most popular products and the vendors with the most products, for the home page.
pub async fn trending(state: &AppState, n: usize) -> crate::Result<(Vec<Card>, Vec<FacetValue>)> {
    let pairs = vec![
        ("sort".to_string(), "popularity".to_string()),
        ("in_stock".into(), "true".into()),
        ("limit".into(), n.to_string()),
        ("facets".into(), "vendor".into()),
    ];
    let req = SearchRequest::parse(&pairs, &state.search.config)?;
    let s = state.clone();
    let a = blocking(move || search::search(&s, &req, &Affinity::default())).await?;
    let vendors = facet_list(a.facets.get("vendor"))
        .into_iter()
        .take(8)
        .filter_map(|o| {
            let value = o.get("value")?.as_str()?.to_string();
            Some(FacetValue {
                label: o.get("name")?.as_str()?.to_string(),
                count: o.get("count")?.as_u64()?,
                selected: false,
                url: format!("/v/{value}"),
                value,
            })
        })
        .collect();
    Ok((a.items.iter().map(Card::from).collect(), vendors))
}

pub(super) async fn vendor_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let vid: crate::auth::VendorId = id.parse().map_err(|_| WebError::not_found())?;
    let profile = crate::services::catalog::storefront::vendor_profile(&state, vid)?;
    let mut b = Browse::parse(raw.as_deref());
    b.vendors.clear();
    b.fixed_vendor = Some(vid.to_string());
    let a = run_search(&state, &page, &b, "popularity").await?;
    let base = format!("/v/{vid}");
    let mut r = build(&state, &base, &b, &a, true);
    r.heading = profile.name.clone();
    if r.sort.is_empty() {
        r.sort = "popularity".into();
    }
    // Every product here is this vendor's: the vendor facet says nothing.
    r.vendors.clear();
    r.vendor = Some(profile);
    render(&state, &page, "storefront/results.html", r)
}
