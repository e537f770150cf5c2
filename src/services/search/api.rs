//! Search's JSON routes under /api/v1 (`router()`): search, suggestions and the admin's
//! reindex and index stats. Handlers translate HTTP to the service's calls and run the
//! CPU-bound work off the async threads; they never touch the index or a table directly.

use super::suggest::{self, Suggestion};
use super::{IndexStats, ReindexReport, SearchAnswer, SearchRequest, request::Affinity};
use crate::app::AppState;
use crate::auth::{Admin, MaybePrincipal};
use crate::error::{Error, Result};
use crate::http::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/search", get(search))
        // The catalog's name for the same engine.
        .route("/search/products", get(search))
        .route("/search/suggestions", get(suggestions))
        .route("/search/feedback", post(feedback))
        .route("/admin/search/reindex", post(reindex))
        .route("/admin/search/stats", get(stats))
}

fn pairs(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("search task: {e}")))?
}

async fn search(
    State(state): State<AppState>,
    MaybePrincipal(principal): MaybePrincipal,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchAnswer>> {
    let req = SearchRequest::parse(&pairs(raw), &state.search.config)?;
    let affinity = if req.personalize {
        state.search.affinity(principal.map(|p| p.user_id))
    } else {
        Affinity::default()
    };
    blocking(move || super::search(&state, &req, &affinity))
        .await
        .map(Json)
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
    Json(input): Json<FeedbackInput>,
) -> Result<(axum::http::StatusCode, Json<Recorded>)> {
    let rtx = state.store.read()?;
    let Some(product) = crate::services::catalog::store::product(&rtx, input.product_id)? else {
        return Err(Error::not_found("product"));
    };
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
    state.search.feedback(input.product_id, input.action)?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(Recorded {
            query_id: input.query_id,
            recorded: true,
        }),
    ))
}
