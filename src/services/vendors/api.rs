//! Vendor routes under /api/v1: admin-only creation and listing; a vendor may read its own.

use super::{CreateInput, model::VendorView};
use crate::app::AppState;
use crate::auth::{Admin, Principal, VendorId};
use crate::error::Result;
use crate::http::{Json, Path, Query};
use crate::services::{Page, PageQuery};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/vendors", get(list).post(create))
        .route("/admin/vendors/{id}", get(admin_read))
        .route("/vendors/{id}", get(read))
}

async fn create(
    axum::extract::State(state): axum::extract::State<AppState>,
    Admin(p): Admin,
    Json(input): Json<CreateInput>,
) -> Result<(StatusCode, Json<VendorView>)> {
    Ok((
        StatusCode::CREATED,
        Json(super::create(&state, &p, input).await?),
    ))
}

async fn list(
    axum::extract::State(state): axum::extract::State<AppState>,
    Admin(p): Admin,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<VendorView>>> {
    Ok(Json(super::list(&state, &p, q)?))
}

async fn read(
    axum::extract::State(state): axum::extract::State<AppState>,
    p: Principal,
    Path(id): Path<VendorId>,
) -> Result<Json<VendorView>> {
    Ok(Json(super::get(&state, &p, id)?))
}

async fn admin_read(
    axum::extract::State(state): axum::extract::State<AppState>,
    Admin(p): Admin,
    Path(id): Path<VendorId>,
) -> Result<Json<VendorView>> {
    Ok(Json(super::get(&state, &p, id)?))
}
