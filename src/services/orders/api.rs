//! Cart, order, vendor-order and admin-order routes under /api/v1. Handlers parse, find
//! who is asking (a user, or a guest by `x-cart-token`) and call the service; checkout
//! goes through the `Idempotency-Key` guard. No table is opened here.

use super::cart::{self, AddInput, CartView, QuantityInput};
use super::model::{CartItemId, OrderId, SubOrderId};
use super::state::Status;
use super::store::CartOwner;
use super::{CheckoutInput, OrderView, SubOrderView, VendorStatusInput};
use crate::app::AppState;
use crate::auth::{Admin, ClientInfo, MaybePrincipal, Principal, VendorUser};
use crate::error::{Error, Result};
use crate::http::idempotency::{self, parse_body};
use crate::http::{Json, Path, Query};
use crate::services::{Page, PageQuery};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;

pub const CART_TOKEN: &str = "x-cart-token";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cart", get(get_cart).delete(clear_cart))
        .route("/cart/items", post(add_item))
        .route("/cart/items/{id}", put(set_item).delete(remove_item))
        .route("/orders", get(list_orders).post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", put(cancel_order))
        .route("/vendor/orders", get(vendor_orders))
        .route("/vendor/orders/{id}", get(vendor_order))
        .route("/vendor/orders/{id}/status", put(vendor_status))
        .route("/admin/orders", get(admin_orders))
        .route("/admin/orders/{id}/cancel", put(admin_cancel))
}

/// Whose cart a request is about. A signed-in request that still carries a guest token
/// merges that guest cart into the user's first (what happens right after login).
/// A guest without a token gets a new one, sent back in `x-cart-token`.
async fn owner(
    state: &AppState,
    p: &MaybePrincipal,
    headers: &HeaderMap,
) -> Result<(CartOwner, Option<String>)> {
    let token = match headers.get(CART_TOKEN) {
        None => None,
        Some(v) => {
            let t = v.to_str().unwrap_or("");
            if !cart::valid_guest_token(t) {
                return Err(Error::invalid(
                    CART_TOKEN,
                    "invalid_cart_token",
                    "not a cart token this store gave out",
                ));
            }
            Some(t.to_string())
        }
    };
    match (&p.0, token) {
        (Some(p), Some(t)) => {
            cart::merge(state, t, p.user_id).await?;
            Ok((CartOwner::User(p.user_id), None))
        }
        (Some(p), None) => Ok((CartOwner::User(p.user_id), None)),
        (None, Some(t)) => Ok((CartOwner::Guest(t.clone()), Some(t))),
        (None, None) => {
            let t = cart::new_guest_token();
            Ok((CartOwner::Guest(t.clone()), Some(t)))
        }
    }
}

fn with_token(body: CartView, token: Option<String>) -> Response {
    let mut r = Json(body).into_response();
    if let Some(t) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        r.headers_mut().insert(CART_TOKEN, t);
    }
    r
}

fn item_id(raw: &str) -> Result<CartItemId> {
    raw.parse().map_err(|_| Error::not_found("cart item"))
}

async fn get_cart(
    State(state): State<AppState>,
    p: MaybePrincipal,
    headers: HeaderMap,
) -> Result<Response> {
    let (o, t) = owner(&state, &p, &headers).await?;
    Ok(with_token(cart::get(&state, &o)?, t))
}

async fn add_item(
    State(state): State<AppState>,
    p: MaybePrincipal,
    headers: HeaderMap,
    Json(input): Json<AddInput>,
) -> Result<Response> {
    let (o, t) = owner(&state, &p, &headers).await?;
    let view = cart::add(&state, o, input).await?;
    let mut r = with_token(view, t);
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

async fn set_item(
    State(state): State<AppState>,
    p: MaybePrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(input): Json<QuantityInput>,
) -> Result<Response> {
    let (o, t) = owner(&state, &p, &headers).await?;
    Ok(with_token(
        cart::set_quantity(&state, o, item_id(&id)?, input.quantity).await?,
        t,
    ))
}

async fn remove_item(
    State(state): State<AppState>,
    p: MaybePrincipal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let (o, t) = owner(&state, &p, &headers).await?;
    Ok(with_token(cart::remove(&state, o, item_id(&id)?).await?, t))
}

async fn clear_cart(
    State(state): State<AppState>,
    p: MaybePrincipal,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let (o, _) = owner(&state, &p, &headers).await?;
    cart::clear(&state, o).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_order(
    State(state): State<AppState>,
    p: Principal,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = p.user_id.to_string();
    idempotency::guard(
        &state.clone(),
        &scope,
        "orders",
        &headers,
        &body,
        || async {
            let input: CheckoutInput = match parse_body(&headers, &body).await {
                Ok(b) => b,
                Err(problem) => return problem.into_response(),
            };
            let ip = client.ip.map(|i| i.to_string());
            match super::checkout(&state, &p, ip, input).await {
                Ok(answer) => (StatusCode::CREATED, Json(answer)).into_response(),
                Err(e) => e.into_response(),
            }
        },
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    status: Option<String>,
}

impl ListQuery {
    fn split(self) -> Result<(PageQuery, Option<Status>)> {
        let status = match self.status {
            None => None,
            Some(s) => Some(Status::parse(&s).ok_or_else(|| {
                Error::invalid("status", "invalid_status", "not an order status")
            })?),
        };
        Ok((
            PageQuery {
                cursor: self.cursor,
                limit: self.limit,
            },
            status,
        ))
    }
}

fn order_id(raw: &str) -> Result<OrderId> {
    raw.parse().map_err(|_| Error::not_found("order"))
}

fn sub_order_id(raw: &str) -> Result<SubOrderId> {
    raw.parse().map_err(|_| Error::not_found("order"))
}

async fn list_orders(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<OrderView>>> {
    let (page, status) = q.split()?;
    Ok(Json(super::list(&state, &p, &page, status, false)?))
}

async fn admin_orders(
    State(state): State<AppState>,
    Admin(p): Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<OrderView>>> {
    let (page, status) = q.split()?;
    Ok(Json(super::list(&state, &p, &page, status, true)?))
}

async fn get_order(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<OrderView>> {
    Ok(Json(super::get(&state, &p, order_id(&id)?)?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: String,
}

/// The optional `{reason}` body of a cancel (an empty body is fine).
async fn cancel_reason(headers: &HeaderMap, body: &Bytes) -> std::result::Result<String, Response> {
    if body.is_empty() {
        return Ok(String::new());
    }
    parse_body::<CancelBody>(headers, body)
        .await
        .map(|b| b.reason)
        .map_err(IntoResponse::into_response)
}

async fn cancel_order(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reason = match cancel_reason(&headers, &body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match order_id(&id) {
        Ok(id) => super::cancel(&state, &p, id, reason)
            .await
            .map(Json)
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn admin_cancel(
    State(state): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reason = match cancel_reason(&headers, &body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let reason = if reason.is_empty() {
        "cancelled by an admin".to_string()
    } else {
        reason
    };
    match order_id(&id) {
        Ok(id) => super::cancel(&state, &p, id, reason)
            .await
            .map(Json)
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn vendor_orders(
    State(state): State<AppState>,
    VendorUser(_, vendor): VendorUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<SubOrderView>>> {
    let (page, status) = q.split()?;
    Ok(Json(super::vendor_list(&state, vendor, &page, status)?))
}

async fn vendor_order(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<SubOrderView>> {
    Ok(Json(super::vendor_get(&state, &p, sub_order_id(&id)?)?))
}

async fn vendor_status(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(input): Json<VendorStatusInput>,
) -> Result<Json<SubOrderView>> {
    if !(p.is_admin() || p.vendor_id.is_some()) {
        return Err(Error::Forbidden("this needs the vendor role".into()));
    }
    Ok(Json(
        super::vendor_update(&state, &p, sub_order_id(&id)?, input).await?,
    ))
}
