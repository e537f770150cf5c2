//! As-you-type suggestions: popular past queries, product titles, categories and brands
//! that the typed text (typos and an unfinished last word allowed) leads to, at most ten,
//! each with its kind. Products, categories and brands come from the suggestion index
//! (`suggest_index`: per-segment words and documents, no search run, no facet pass),
//! popular queries from a recent snapshot of the analytics (`suggest_queries`). Only
//! what the live index holds is suggested, so never an archived, draft or suspended
//! vendor's product.

use super::SearchState;
use super::index;
use super::query;
use super::suggest_index::{self, CategoryNames};
use crate::app::AppState;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

pub const MAX_SUGGESTIONS: usize = 10;
/// Past queries suggested at most, and how many searches (that found something) a query
/// needs before it is ever suggested to others.
pub const MAX_QUERIES: usize = 3;
pub const MIN_QUERY_SEARCHES: u64 = 3;
/// Categories and brands suggested at most; products fill the rest.
pub const MAX_CATEGORIES: usize = 3;
pub const MAX_BRANDS: usize = 2;
/// Products looked at for the product slots (titles shared by several products are shown
/// once); within what the suggestion index keeps exact.
const CANDIDATES: usize = 4 * MAX_SUGGESTIONS;
const _: () = assert!(CANDIDATES <= suggest_index::PER_LIST);

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
    let live = search.live()?;
    let view = live.view();
    let searcher = &view.searcher;
    let parsed = query::parse(q, &mut index::analyzer());
    let readers = searcher.segment_readers();
    let alive = |seg: usize, doc| readers.get(seg).is_some_and(|r| !r.is_deleted(doc));
    let expand = |w: &str, prefix| {
        let work = || suggest_index::expansions(&view.suggest, w, prefix);
        view.suggest_expansions.get_or(w, prefix, work)
    };
    let found = suggest_index::find_with(&view.suggest, alive, &parsed, CANDIDATES, expand);

    let mut out: Vec<Suggestion> = search
        .popular_queries
        .suggest(&search.analytics, q, MIN_QUERY_SEARCHES, MAX_QUERIES)
        .into_iter()
        .map(|text| Suggestion {
            kind: "query",
            value: text.clone(),
            text,
        })
        .collect();
    let cats = if found.categories.is_empty() {
        Default::default()
    } else {
        search.categories.categories(&state.store)?
    };
    let categories: Vec<Suggestion> = leaves(&found.categories, &cats.names)
        .into_iter()
        .take(MAX_CATEGORIES)
        .map(|(id, name)| Suggestion {
            kind: "category",
            text: name.to_string(),
            value: id.to_string(),
        })
        .collect();
    let brands: Vec<Suggestion> = found
        .brands
        .iter()
        .take(MAX_BRANDS)
        .map(|(b, _)| Suggestion {
            kind: "brand",
            text: b.clone(),
            value: b.clone(),
        })
        .collect();
    // Products fill what queries, categories and brands leave of the ten; a title shared
    // by several products is shown once (the best ranked).
    let room = MAX_SUGGESTIONS.saturating_sub(out.len() + categories.len() + brands.len());
    let f = live.fields;
    let mut products = 0;
    for (_, seg, doc) in &found.products {
        if products == room {
            break;
        }
        let d: tantivy::TantivyDocument = searcher
            .doc(tantivy::DocAddress::new(*seg, *doc))
            .map_err(index::ts)?;
        let text = |field| {
            d.get_first(field)
                .and_then(|v| tantivy::schema::Value::as_str(&v))
                .map(str::to_string)
        };
        let (Some(title), Some(id)) = (text(f.title), text(f.id)) else {
            continue;
        };
        if !out.iter().any(|s| s.text == title) {
            out.push(Suggestion {
                kind: "product",
                text: title,
                value: id,
            });
            products += 1;
        }
    }
    out.extend(categories);
    out.extend(brands);
    out.truncate(MAX_SUGGESTIONS);
    Ok(out)
}

/// The most specific categories holding matches (those none of whose subcategories
/// hold any), busiest first, then by name: (id, name). Ids the catalog no longer has are
/// left out.
pub fn leaves<'a>(
    counts: &'a HashMap<String, u64>,
    names: &'a CategoryNames,
) -> Vec<(&'a str, &'a str)> {
    let parents: HashSet<&str> = counts
        .keys()
        .filter_map(|c| names.get(c).and_then(|(_, p)| p.as_deref()))
        .collect();
    let mut out: Vec<(&str, &str, u64)> = counts
        .iter()
        .filter(|(c, _)| !parents.contains(c.as_str()))
        .filter_map(|(c, n)| {
            names
                .get(c)
                .map(|(name, _)| (c.as_str(), name.as_str(), *n))
        })
        .collect();
    out.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then_with(|| a.1.cmp(b.1))
            .then_with(|| a.0.cmp(b.0))
    });
    out.into_iter().map(|(id, name, _)| (id, name)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_the_most_specific_counted_categories() {
        let names: CategoryNames = [
            ("e", "Electronics", None),
            ("a", "Audio", Some("e")),
            ("p", "Phones", Some("e")),
            ("h", "Home", None),
            ("k", "Kitchen", Some("h")),
        ]
        .into_iter()
        .map(|(id, n, p)| (id.to_string(), (n.to_string(), p.map(str::to_string))))
        .collect();
        let counts: HashMap<String, u64> = [("e", 5), ("a", 3), ("p", 2), ("h", 2), ("gone", 9)]
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect();
        // Electronics has counted children; Home does not (its Kitchen holds nothing);
        // a category the catalog no longer has is left out.
        assert_eq!(
            leaves(&counts, &names),
            vec![("a", "Audio"), ("h", "Home"), ("p", "Phones")]
        );
        assert!(leaves(&HashMap::new(), &names).is_empty());
    }
}
