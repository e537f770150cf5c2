//! The cart page and its forms: add from a product page, change a quantity, remove a
//! line. Guests get a cart through the `souk_cart` cookie (the guest cart token of the
//! orders service); signing in merges it into the account's cart. Lines are grouped by
//! vendor with shipping and tax, and price or stock changes since adding are flagged.

use crate::app::AppState;
use crate::error::Error;
use crate::services::catalog::model::{ProductId, VariantId};
use crate::services::orders::cart::{self, AddInput, CartView};
use crate::services::orders::model::CartItemId;
use crate::services::orders::store::CartOwner;
use crate::web::session::{self, CART_COOKIE, Viewer};
use crate::web::{CsrfForm, Flash, Page, PageResult, WebError, render};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cart", get(cart_page))
        .route("/cart/add", post(add))
        .route("/cart/items/{id}", post(set_quantity))
        .route("/cart/items/{id}/remove", post(remove))
}

/// Whose cart this browser holds, and the cookies that keep it so. A signed-in browser
/// that still carries a guest cart merges it first (right after signing in elsewhere).
pub async fn owner(
    state: &AppState,
    viewer: &Viewer,
    create: bool,
) -> Result<(Option<CartOwner>, Vec<String>), WebError> {
    match (&viewer.principal, &viewer.cart_token) {
        (Some(p), Some(t)) => {
            cart::merge(state, t.clone(), p.user_id).await?;
            Ok((
                Some(CartOwner::User(p.user_id)),
                vec![session::clear_cookie(state, CART_COOKIE)],
            ))
        }
        (Some(p), None) => Ok((Some(CartOwner::User(p.user_id)), Vec::new())),
        (None, Some(t)) => Ok((Some(CartOwner::Guest(t.clone())), Vec::new())),
        (None, None) if create => {
            let (t, cookie) = viewer.cart_token_or_new(state);
            Ok((Some(CartOwner::Guest(t)), cookie.into_iter().collect()))
        }
        (None, None) => Ok((None, Vec::new())),
    }
}

fn with_cookies(mut res: Response, cookies: Vec<String>) -> Response {
    for c in cookies {
        if let Ok(v) = axum::http::HeaderValue::from_str(&c) {
            res.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
    }
    res
}

/// 303 to `to` with a flash message and extra cookies.
fn go(state: &AppState, to: &str, flash: Flash, mut cookies: Vec<String>) -> Response {
    cookies.push(session::flash_cookie(state, &[flash]));
    session::redirect_with_cookies(to, cookies)
}

#[derive(Serialize)]
struct CartPage {
    cart: Option<CartView>,
    max_quantity: i64,
    noindex: bool,
}

async fn cart_page(State(state): State<AppState>, page: Page) -> PageResult {
    let (owner, cookies) = owner(&state, &page.viewer, false).await?;
    let cart = match &owner {
        Some(o) => Some(cart::get(&state, o)?).filter(|c| !c.vendors.is_empty()),
        None => None,
    };
    let res = render(
        &state,
        &page,
        "storefront/cart.html",
        CartPage {
            cart,
            max_quantity: state.config.orders.max_line_quantity,
            noindex: true,
        },
    )?;
    Ok(with_cookies(crate::web::no_store(res), cookies))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddForm {
    product_id: String,
    variant_id: String,
    #[serde(default = "one")]
    quantity: String,
}

fn one() -> String {
    "1".into()
}

fn parse_id(s: &str) -> Result<uuid::Uuid, WebError> {
    s.parse::<uuid::Uuid>()
        .map_err(|_| WebError::status(StatusCode::BAD_REQUEST, "errors.bad_form"))
}

/// A service refusal as one sentence for a flash message.
fn refusal(state: &AppState, e: &Error) -> Option<String> {
    let i18n = &state.web.i18n;
    match e {
        Error::Validation(fields) => Some(
            fields
                .iter()
                .map(|f| match f.code.as_str() {
                    "out_of_range" => i18n.t_with(
                        "cart.bad_quantity",
                        &[("max", &state.config.orders.max_line_quantity.to_string())],
                    ),
                    "not_purchasable" | "vendor_suspended" | "unknown_product"
                    | "unknown_variant" => i18n.t("cart.not_for_sale"),
                    "cart_full" => i18n.t("cart.full"),
                    _ => f.message.clone(),
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Error::NotFound(_) => Some(i18n.t("cart.line_gone")),
        _ => None,
    }
}

fn quantity(s: &str) -> i64 {
    // Not a number is 0, which the service refuses with the allowed range.
    s.trim().parse().unwrap_or(0)
}

async fn add(
    State(state): State<AppState>,
    page: Page,
    CsrfForm(form): CsrfForm<AddForm>,
) -> PageResult {
    let product_id = ProductId(parse_id(&form.product_id)?);
    let variant_id = VariantId(parse_id(&form.variant_id)?);
    let (owner, cookies) = owner(&state, &page.viewer, true).await?;
    let owner = owner.ok_or_else(|| WebError::internal("no cart owner"))?;
    let input = AddInput {
        product_id,
        variant_id,
        quantity: quantity(&form.quantity),
    };
    match cart::add(&state, owner, input).await {
        Ok(_) => Ok(go(
            &state,
            "/cart",
            Flash::success(state.web.i18n.t("cart.added")),
            cookies,
        )),
        Err(e) => match refusal(&state, &e) {
            // Back to where the shopper was, saying why; the cart is unchanged.
            Some(msg) => {
                let back = crate::services::catalog::queries::product_for(
                    &state,
                    page.principal(),
                    &product_id.to_string(),
                )
                .map(|(p, _)| format!("/p/{}", p.slug))
                .unwrap_or_else(|_| "/cart".into());
                Ok(go(&state, &back, Flash::error(msg), cookies))
            }
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityForm {
    quantity: String,
}

async fn set_quantity(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<QuantityForm>,
) -> PageResult {
    let item = CartItemId(parse_id(&id)?);
    let (owner, cookies) = owner(&state, &page.viewer, false).await?;
    let Some(owner) = owner else {
        return Err(WebError::not_found());
    };
    match cart::set_quantity(&state, owner, item, quantity(&form.quantity)).await {
        Ok(_) => Ok(go(
            &state,
            "/cart",
            Flash::success(state.web.i18n.t("cart.updated")),
            cookies,
        )),
        Err(e) => match refusal(&state, &e) {
            Some(msg) => Ok(go(&state, "/cart", Flash::error(msg), cookies)),
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

async fn remove(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Nothing>,
) -> PageResult {
    let item = CartItemId(parse_id(&id)?);
    let (owner, cookies) = owner(&state, &page.viewer, false).await?;
    let Some(owner) = owner else {
        return Err(WebError::not_found());
    };
    match cart::remove(&state, owner, item).await {
        Ok(_) => Ok(go(
            &state,
            "/cart",
            Flash::success(state.web.i18n.t("cart.removed")),
            cookies,
        )),
        Err(e) => match refusal(&state, &e) {
            Some(msg) => Ok(go(&state, "/cart", Flash::error(msg), cookies)),
            None => Err(e.into()),
        },
    }
}
