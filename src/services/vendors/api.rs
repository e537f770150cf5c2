//! Vendor routes under /api/v1: admin-only creation and listing; a vendor may read its own.

use super::shipping::{ShippingInput, ShippingView};
use super::{CreateInput, model::VendorView};
use crate::app::AppState;
use crate::auth::{Admin, Principal, VendorId, VendorUser};
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
        .route(
            "/vendor/settings/shipping",
            get(own_shipping).put(set_own_shipping),
        )
        .route(
            "/admin/vendors/{id}/shipping",
            get(admin_shipping).put(set_admin_shipping),
        )
}

async fn own_shipping(
    axum::extract::State(state): axum::extract::State<AppState>,
    VendorUser(p, vendor): VendorUser,
) -> Result<Json<ShippingView>> {
    Ok(Json(super::shipping::get(&state, &p, vendor)?))
}

async fn set_own_shipping(
    axum::extract::State(state): axum::extract::State<AppState>,
    VendorUser(p, vendor): VendorUser,
    Json(input): Json<ShippingInput>,
) -> Result<Json<ShippingView>> {
    Ok(Json(super::shipping::set(&state, &p, vendor, input).await?))
}

async fn admin_shipping(
    axum::extract::State(state): axum::extract::State<AppState>,
    Admin(p): Admin,
    Path(id): Path<VendorId>,
) -> Result<Json<ShippingView>> {
    Ok(Json(super::shipping::get(&state, &p, id)?))
}

async fn set_admin_shipping(
    axum::extract::State(state): axum::extract::State<AppState>,
    Admin(p): Admin,
    Path(id): Path<VendorId>,
    Json(input): Json<ShippingInput>,
) -> Result<Json<ShippingView>> {
    Ok(Json(super::shipping::set(&state, &p, id, input).await?))
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
