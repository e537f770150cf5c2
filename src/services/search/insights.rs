//! What the analytics aggregates answer: trending queries and products (products shown as
//! the index shows them, so nothing a shopper may not find is ever trending) and the
//! admin's analytics report. Reads the live index and the aggregates; writes nothing.

use super::analytics::{MAX_DAYS, Report};
use super::index::{HitView, Live};
use super::trending::{DAY, HOURS};
use crate::app::AppState;
use crate::error::{Error, Result};
use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{TantivyDocument, Term};

/// Largest `limit` of the trending lists and of the analytics report's lists.
pub const MAX_TRENDING: usize = 50;
pub const MAX_REPORT_ROWS: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct TrendingQuery {
    pub query: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrendingProduct {
    #[serde(flatten)]
    pub view: HitView,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Each event's weight halves every this many hours.
    pub half_life_hours: i64,
    /// Only what happened within this many hours counts.
    pub window_hours: i64,
    pub queries: Vec<TrendingQuery>,
    pub products: Vec<TrendingProduct>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrendingAnswer {
    pub hours: Window,
    pub day: Window,
}

/// Trending now: over the last hours and the last day, at most `limit` of each kind.
pub fn trending(state: &AppState, limit: usize) -> Result<TrendingAnswer> {
    let live = state.search.live()?;
    // Ask for more products than shown: some may no longer be findable.
    let lists = state
        .search
        .analytics
        .trending(state.clock.now(), limit.saturating_mul(3));
    let round = |s: f64| (s * 1000.0).round() / 1000.0;
    let queries = |v: Vec<(String, f64)>| {
        v.into_iter()
            .take(limit)
            .map(|(query, s)| TrendingQuery {
                query,
                score: round(s),
            })
            .collect()
    };
    let products = |v: Vec<(String, f64)>| -> Result<Vec<TrendingProduct>> {
        let mut out = Vec::new();
        for (id, s) in v {
            if out.len() >= limit {
                break;
            }
            if let Some(view) = view_of(&live, &id)? {
                out.push(TrendingProduct {
                    view,
                    score: round(s),
                });
            }
        }
        Ok(out)
    };
    Ok(TrendingAnswer {
        hours: Window {
            half_life_hours: HOURS.0 / 3600,
            window_hours: HOURS.1 / 3600,
            queries: queries(lists.queries_hours),
            products: products(lists.products_hours)?,
        },
        day: Window {
            half_life_hours: DAY.0 / 3600,
            window_hours: DAY.1 / 3600,
            queries: queries(lists.queries_day),
            products: products(lists.products_day)?,
        },
    })
}

/// The product's hit view if the index holds it (active, its vendor not suspended).
fn view_of(live: &Live, id: &str) -> Result<Option<HitView>> {
    let f = live.fields;
    let view = live.view();
    let searcher = &view.searcher;
    let q = TermQuery::new(Term::from_field_text(f.id, id), IndexRecordOption::Basic);
    let top = searcher
        .search(&q, &TopDocs::with_limit(1))
        .map_err(super::index::ts)?;
    let Some((_, addr)) = top.first() else {
        return Ok(None);
    };
    let doc: TantivyDocument = searcher.doc(*addr).map_err(super::index::ts)?;
    let view = doc
        .get_first(f.view)
        .and_then(|v| tantivy::schema::Value::as_str(&v))
        .ok_or_else(|| Error::internal("search document without its view"))?;
    Ok(Some(serde_json::from_str(view)?))
}

/// The admin's report over the last `days` days (1 to [`MAX_DAYS`]).
pub fn report(state: &AppState, days: i64, limit: usize) -> Report {
    state
        .search
        .analytics
        .report(state.clock.now(), days.clamp(1, MAX_DAYS), limit)
}
