//! Search's JSON routes under /api/v1 (`router()`): search, suggestions, feedback,
//! trending, and the admin's reindex, index stats and analytics. Handlers translate HTTP to the service's calls and run the
//! CPU-bound work off the async threads; they never touch the index or a table directly.

use super::analytics::{MAX_DAYS, Report};
use super::insights::{self, TrendingAnswer};
use super::suggest::{self, Suggestion};
use super::{IndexStats, ReindexReport, SearchRequest, Visitor, request::Affinity};
use crate::app::AppState;
use crate::auth::{Admin, MaybePrincipal};
use crate::error::{Error, Result};
use crate::http::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/search", get(search))
        // The catalog's name for the same engine.
        .route("/search/products", get(search))
        .route("/search/suggestions", get(suggestions))
        .route("/search/feedback", post(feedback))
        .route("/search/trending", get(trending))
        .route("/admin/search/reindex", post(reindex))
        .route("/admin/search/stats", get(stats))
        .route("/admin/search/analytics", get(analytics))
}

/// The visitor's opaque session as the storefront sends it (`x-session-id`: 8 to 64 of
/// A-Z a-z 0-9 - _), else the signed-in session; anything else is ignored.
fn visitor(principal: Option<&crate::auth::Principal>, headers: &HeaderMap) -> Visitor {
    let header = headers
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (8..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string);
    Visitor {
        user_id: principal.map(|p| p.user_id.to_string()),
        session_id: header.or_else(|| {
            principal
                .and_then(|p| p.session_id.as_ref())
                .map(|s| s.to_string())
        }),
    }
}

/// A whole number parameter within `range`, or a 400 naming it.
fn number(name: &str, v: &str, range: std::ops::RangeInclusive<i64>) -> Result<i64> {
    v.parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "`{name}` must be a whole number from {} to {}",
                range.start(),
                range.end()
            ))
        })
}

fn pairs(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    crate::cpu::run("search", f).await
}

async fn search(
    State(state): State<AppState>,
    MaybePrincipal(principal): MaybePrincipal,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let req = SearchRequest::parse(&pairs(raw), &state.search.config)?;
    let who = visitor(principal.as_ref(), &headers);
    let affinity = if req.personalize {
        state.search.affinity(principal.map(|p| p.user_id))
    } else {
        Affinity::default()
    };
    let answer = super::search_as_async(&state, req, affinity, who).await?;
    let json = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, json)], answer.to_json()).into_response())
}

#[derive(Serialize)]
struct Suggestions {
    items: Vec<Suggestion>,
}

async fn suggestions(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Suggestions>> {
    let mut q = String::new();
    for (k, v) in pairs(raw) {
        match k.as_str() {
            "q" => q = v,
            other => return Err(Error::BadRequest(format!("unknown parameter `{other}`"))),
        }
    }
    blocking(move || suggest::suggestions(&state, &q))
        .await
        .map(|items| Json(Suggestions { items }))
}

async fn reindex(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<ReindexReport>> {
    super::reindex_live(&state).await.map(Json)
}

async fn stats(State(state): State<AppState>, Admin(_): Admin) -> Result<Json<IndexStats>> {
    blocking(move || state.search.stats()).await.map(Json)
}

async fn analytics(
    State(state): State<AppState>,
    Admin(_): Admin,
    RawQuery(raw): RawQuery,
) -> Result<Json<Report>> {
    let (mut days, mut limit) = (7, 20);
    for (k, v) in pairs(raw) {
        match k.as_str() {
            "days" => days = number("days", &v, 1..=MAX_DAYS)?,
            "limit" => limit = number("limit", &v, 1..=insights::MAX_REPORT_ROWS as i64)?,
            other => return Err(Error::BadRequest(format!("unknown parameter `{other}`"))),
        }
    }
    blocking(move || Ok(insights::report(&state, days, limit as usize)))
        .await
        .map(Json)
}

async fn trending(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<TrendingAnswer>> {
    let mut limit = 10;
    for (k, v) in pairs(raw) {
        match k.as_str() {
            "limit" => limit = number("limit", &v, 1..=insights::MAX_TRENDING as i64)?,
            other => return Err(Error::BadRequest(format!("unknown parameter `{other}`"))),
        }
    }
    blocking(move || insights::trending(&state, limit as usize))
        .await
        .map(Json)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackInput {
    query_id: uuid::Uuid,
    product_id: crate::services::catalog::model::ProductId,
    action: super::Action,
}

#[derive(Serialize)]
struct Recorded {
    query_id: uuid::Uuid,
    recorded: bool,
}

async fn feedback(
    State(state): State<AppState>,
    MaybePrincipal(principal): MaybePrincipal,
    headers: HeaderMap,
    Json(input): Json<FeedbackInput>,
) -> Result<(axum::http::StatusCode, Json<Recorded>)> {
    let rtx = state.store.read()?;
    let Some(product) = crate::services::catalog::store::product(&rtx, input.product_id)? else {
        return Err(Error::not_found("product"));
    };
    let who = visitor(principal.as_ref(), &headers);
    if let Some(p) = principal {
        let cats: std::collections::HashMap<_, _> =
            crate::services::catalog::store::all_categories(&rtx)?
                .into_iter()
                .map(|c| (c.id, c))
                .collect();
        let path = super::index::category_path(&cats, product.category_id)
            .into_iter()
            .map(|c| c.id.to_string())
            .collect();
        state
            .search
            .remember(p.user_id, path, product.brand.clone());
    }
    drop(rtx);
    super::record_feedback(
        &state,
        &input.query_id.to_string(),
        input.product_id,
        input.action,
        &who,
    );
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(Recorded {
            query_id: input.query_id,
            recorded: true,
        }),
    ))
}
