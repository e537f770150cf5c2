//! Cart, order, return, vendor-order and admin-order routes under /api/v1. Handlers
//! parse, find who is asking (a user; a guest by `x-cart-token`, or by an order's
//! `access_token`) and call the service; checkout goes through the `Idempotency-Key`
//! guard. No table is opened here.

use super::cart::{self, AddInput, CartView, QuantityInput};
use super::model::{CartItemId, OrderId, ReturnId, SubOrderId};
use super::returns::ReturnInput;
use super::state::Status;
use super::store::CartOwner;
use super::{CheckoutInput, GuestCheckout, OrderView, SubOrderView, VendorStatusInput};
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
        .route("/orders/{id}/return", post(return_order))
        .route("/vendor/orders", get(vendor_orders))
        .route("/vendor/orders/{id}", get(vendor_order))
        .route("/vendor/orders/{id}/status", put(vendor_status))
        .route(
            "/vendor/orders/{id}/returns/{rid}/approve",
            post(approve_return),
        )
        .route(
            "/vendor/orders/{id}/returns/{rid}/reject",
            post(reject_return),
        )
        .route(
            "/vendor/orders/{id}/returns/{rid}/received",
            post(receive_return),
        )
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

/// Checkout. With a bearer token: the user's cart. Without: a guest's, named by
/// `x-cart-token`, with `email` in the body (see `GuestCheckout`).
async fn create_order(
    State(state): State<AppState>,
    p: MaybePrincipal,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = client.ip.map(|i| i.to_string());
    let Some(p) = p.0 else {
        let token = match headers.get(CART_TOKEN).map(|v| v.to_str().unwrap_or("")) {
            Some(t) if cart::valid_guest_token(t) => t.to_string(),
            Some(_) => {
                return Error::invalid(
                    CART_TOKEN,
                    "invalid_cart_token",
                    "not a cart token this store gave out",
                )
                .into_response();
            }
            None => {
                return Error::Unauthorized(
                    "sign in, or send the guest cart's x-cart-token".into(),
                )
                .into_response();
            }
        };
        use sha2::Digest;
        let scope = format!(
            "guest:{}",
            hex::encode(sha2::Sha256::digest(token.as_bytes()))
        );
        return idempotency::guard(
            &state.clone(),
            &scope,
            "orders",
            &headers,
            &body,
            || async {
                let input: GuestCheckout = match parse_body(&headers, &body).await {
                    Ok(b) => b,
                    Err(problem) => return problem.into_response(),
                };
                match super::checkout_guest(&state, &token, ip, input).await {
                    Ok(answer) => (StatusCode::CREATED, Json(answer)).into_response(),
                    Err(e) => e.into_response(),
                }
            },
        )
        .await;
    };
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
            match super::checkout(&state, &p, ip, input).await {
                Ok(answer) => (StatusCode::CREATED, Json(answer)).into_response(),
                Err(e) => e.into_response(),
            }
        },
    )
    .await
}

/// `?access_token=`: a guest's proof that an order is theirs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessQuery {
    #[serde(default)]
    access_token: Option<String>,
}

/// Who acts on an order: a guest by access token, else the signed-in user (401 if none).
enum Caller {
    Guest(String),
    User(Principal),
}

fn caller(p: MaybePrincipal, q: AccessQuery) -> Result<Caller> {
    match (q.access_token, p.0) {
        (Some(t), _) => Ok(Caller::Guest(t)),
        (None, Some(p)) => Ok(Caller::User(p)),
        (None, None) => Err(Error::Unauthorized(
            "sign in, or give the order's access_token".into(),
        )),
    }
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
    p: MaybePrincipal,
    Path(id): Path<String>,
    Query(q): Query<AccessQuery>,
) -> Result<Json<OrderView>> {
    let id = order_id(&id)?;
    Ok(Json(match caller(p, q)? {
        Caller::Guest(t) => super::get_guest(&state, id, &t)?,
        Caller::User(p) => super::get(&state, &p, id)?,
    }))
}

async fn return_order(
    State(state): State<AppState>,
    p: MaybePrincipal,
    Path(id): Path<String>,
    Query(q): Query<AccessQuery>,
    Json(input): Json<ReturnInput>,
) -> Result<(StatusCode, Json<OrderView>)> {
    let id = order_id(&id)?;
    let o = match caller(p, q)? {
        Caller::Guest(t) => super::request_return_guest(&state, id, &t, input).await?,
        Caller::User(p) => super::request_return(&state, &p, id, input).await?,
    };
    Ok((StatusCode::CREATED, Json(o)))
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
    p: MaybePrincipal,
    Path(id): Path<String>,
    Query(q): Query<AccessQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reason = match cancel_reason(&headers, &body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (id, who) = match order_id(&id).and_then(|id| Ok((id, caller(p, q)?))) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let done = match who {
        Caller::Guest(t) => super::cancel_guest(&state, id, &t, reason).await,
        Caller::User(p) => super::cancel(&state, &p, id, reason).await,
    };
    done.map(Json).into_response()
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

fn return_id(raw: &str) -> Result<ReturnId> {
    raw.parse().map_err(|_| Error::not_found("return"))
}

fn require_vendor_role(p: &Principal) -> Result<()> {
    if p.is_admin() || p.vendor_id.is_some() {
        Ok(())
    } else {
        Err(Error::Forbidden("this needs the vendor role".into()))
    }
}

async fn approve_return(
    State(state): State<AppState>,
    p: Principal,
    Path((id, rid)): Path<(String, String)>,
) -> Result<Json<SubOrderView>> {
    require_vendor_role(&p)?;
    Ok(Json(
        super::approve_return(&state, &p, sub_order_id(&id)?, return_id(&rid)?).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    #[serde(default)]
    note: Option<String>,
}

async fn reject_return(
    State(state): State<AppState>,
    p: Principal,
    Path((id, rid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let note = if body.is_empty() {
        None
    } else {
        match parse_body::<RejectBody>(&headers, &body).await {
            Ok(b) => b.note,
            Err(problem) => return problem.into_response(),
        }
    };
    let run = async {
        require_vendor_role(&p)?;
        super::reject_return(&state, &p, sub_order_id(&id)?, return_id(&rid)?, note).await
    };
    run.await.map(Json).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceivedBody {
    restock: bool,
}

async fn receive_return(
    State(state): State<AppState>,
    p: Principal,
    Path((id, rid)): Path<(String, String)>,
    Json(input): Json<ReceivedBody>,
) -> Result<Json<SubOrderView>> {
    require_vendor_role(&p)?;
    Ok(Json(
        super::receive_return(
            &state,
            &p,
            sub_order_id(&id)?,
            return_id(&rid)?,
            input.restock,
        )
        .await?,
    ))
}
