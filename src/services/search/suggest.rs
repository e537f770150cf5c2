//! As-you-type suggestions: popular past queries, product titles, categories and brands
//! that the typed text (typos and an unfinished last word allowed) leads to, at most ten,
//! each with its kind. It reuses the search engine's matching and the analytics' query
//! counts, and never reads anything the index lacks.

use super::request::{self, SearchRequest, Sort};
use super::{SearchState, facets::Wanted};
use crate::app::AppState;
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::Value;

pub const MAX_SUGGESTIONS: usize = 10;
/// Past queries suggested at most, and how many searches (that found something) a query
/// needs before it is ever suggested to others.
pub const MAX_QUERIES: usize = 3;
pub const MIN_QUERY_SEARCHES: u64 = 3;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suggestion {
    /// `query`, `product`, `category` or `brand`.
    pub kind: &'static str,
    pub text: String,
    /// The product's or category's id; a brand's name; the query's text.
    pub value: String,
}

pub fn suggestions(state: &AppState, q: &str) -> Result<Vec<Suggestion>> {
    let search: &SearchState = &state.search;
    if q.chars().count() > search.config.max_query_len {
        return Err(Error::BadRequest(format!(
            "`q` is longer than {} characters",
            search.config.max_query_len
        )));
    }
    if q.trim().is_empty() {
        return Ok(Vec::new());
    }
    let req = SearchRequest {
        q: q.to_string(),
        category: None,
        vendors: Vec::new(),
        brands: Vec::new(),
        price: (None, None),
        in_stock: false,
        attributes: Vec::new(),
        sort: Sort::Relevance,
        facets: Wanted {
            category: true,
            brand: true,
            ..Wanted::default()
        },
        limit: 5,
        offset: 0,
        personalize: false,
    };
    let live = search.live()?;
    let answer = super::run_cached(state, &live, &req, &request::Affinity::default())?;
    let mut out: Vec<Suggestion> = search
        .analytics
        .suggest(q, MIN_QUERY_SEARCHES, MAX_QUERIES)
        .into_iter()
        .map(|text| Suggestion {
            kind: "query",
            value: text.clone(),
            text,
        })
        .collect();
    // Products fill what queries, categories (3) and brands (2) leave of the ten.
    let products = MAX_SUGGESTIONS - out.len() - 5;
    for hit in answer.items.iter().take(products) {
        if !out.iter().any(|s| s.text == hit.view.title) {
            out.push(Suggestion {
                kind: "product",
                text: hit.view.title.clone(),
                value: hit.view.id.clone(),
            });
        }
    }
    // The most specific categories holding hits: leaves of the counted tree, busiest first.
    let mut leaves = Vec::new();
    if let Some(tree) = answer.facets.get("category") {
        collect_leaves(tree, &mut leaves);
    }
    leaves.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    for (name, id, _) in leaves.into_iter().take(3) {
        out.push(Suggestion {
            kind: "category",
            text: name,
            value: id,
        });
    }
    if let Some(Value::Array(brands)) = answer.facets.get("brand") {
        for b in brands.iter().take(2) {
            if let Some(name) = b.get("value").and_then(Value::as_str) {
                out.push(Suggestion {
                    kind: "brand",
                    text: name.to_string(),
                    value: name.to_string(),
                });
            }
        }
    }
    out.truncate(MAX_SUGGESTIONS);
    Ok(out)
}

fn collect_leaves(tree: &Value, out: &mut Vec<(String, String, u64)>) {
    let Value::Array(nodes) = tree else { return };
    for n in nodes {
        let children = n.get("children");
        let empty = children
            .and_then(Value::as_array)
            .is_none_or(|c| c.is_empty());
        if empty {
            out.push((
                n.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                n.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                n.get("count").and_then(Value::as_u64).unwrap_or(0),
            ));
        } else if let Some(c) = children {
            collect_leaves(c, out);
        }
    }
}
