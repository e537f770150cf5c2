//! Checkout through forms: address, shipping per vendor, payment method (wallet, the test
//! card gateway when enabled, the hosted gateway's redirect, cash on delivery), the
//! review, and "place order" with an idempotency key carried in the form, so a double
//! submit makes one order. Then the gateway's confirmation step when it asks for one, and
//! the confirmation page. Guests check out with an email; their order's access token is
//! kept in an HttpOnly cookie so they can confirm and see it.

use super::cart::owner;
use crate::app::AppState;
use crate::auth::ClientInfo;
use crate::error::{Error, FieldError};
use crate::services::orders::cart::{self, CartView};
use crate::services::orders::model::Address;
use crate::services::orders::{self, CheckoutAnswer, CheckoutInput, GuestCheckout};
use crate::services::payments::gateway::CardInput;
use crate::services::payments::model::{Method, NextAction};
use crate::web::session::{self, ORDER_COOKIE};
use crate::web::{CsrfForm, Page, PageResult, WebError, no_store, redirect_plain, render};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout", get(checkout_page).post(place_order))
        .merge(super::checkout_steps::router())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    line1: String,
    #[serde(default)]
    line2: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    payment_method: String,
    #[serde(default, skip_serializing)]
    card_number: String,
    #[serde(default)]
    card_exp_month: String,
    #[serde(default)]
    card_exp_year: String,
    #[serde(default, skip_serializing)]
    card_cvc: String,
    #[serde(default)]
    idempotency_key: String,
}

#[derive(Serialize)]
struct MethodOption {
    value: &'static str,
    label: String,
    note: Option<String>,
}

#[derive(Serialize)]
struct CheckoutPage {
    cart: CartView,
    form: CheckoutForm,
    errors: BTreeMap<String, String>,
    form_error: Option<String>,
    methods: Vec<MethodOption>,
    guest: bool,
    test_gateway: bool,
    noindex: bool,
}

fn new_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
}

fn methods(state: &AppState, page: &Page) -> Vec<MethodOption> {
    let i18n = &state.web.i18n;
    let mut out = Vec::new();
    if let Some(p) = page.principal() {
        let note = crate::services::payments::queries::wallet_balance(state, p)
            .ok()
            .map(|b| {
                i18n.t_with(
                    "checkout.wallet_balance",
                    &[(
                        "balance",
                        &crate::web::i18n::money(b.balance.amount, b.balance.currency.as_str()),
                    )],
                )
            });
        out.push(MethodOption {
            value: "wallet",
            label: i18n.t("checkout.method_wallet"),
            note,
        });
    }
    if state.payments.provider(Method::Card).is_ok() {
        out.push(MethodOption {
            value: "card",
            label: i18n.t("checkout.method_card"),
            note: state
                .config
                .payments
                .test_gateway
                .then(|| i18n.t("checkout.test_gateway")),
        });
    }
    if state.payments.provider(Method::Hosted).is_ok() {
        out.push(MethodOption {
            value: "hosted",
            label: i18n.t("checkout.method_hosted"),
            note: Some(i18n.t("checkout.hosted_note")),
        });
    }
    out.push(MethodOption {
        value: "cod",
        label: i18n.t("checkout.method_cod"),
        note: None,
    });
    out
}

/// The cart to check out, or a redirect to the cart page when there is nothing to buy.
async fn cart_to_buy(state: &AppState, page: &Page) -> Result<Option<CartView>, WebError> {
    let (owner, _) = owner(state, &page.viewer, false).await?;
    let Some(owner) = owner else {
        return Ok(None);
    };
    let c = cart::get(state, &owner)?;
    Ok((!c.vendors.is_empty()).then_some(c))
}

fn prefill(state: &AppState, page: &Page) -> CheckoutForm {
    let mut f = CheckoutForm {
        idempotency_key: new_key(),
        ..Default::default()
    };
    if let Some(p) = page.principal()
        && let Ok(u) = crate::services::users::current_user(state, p)
    {
        f.name = u.name.clone();
        if let Some(a) = u.addresses.first() {
            f.name = a.name.clone();
            f.line1 = a.line1.clone();
            f.line2 = a.line2.clone().unwrap_or_default();
            f.city = a.city.clone();
            f.postal_code = a.postal_code.clone();
            f.country = a.country.clone();
        }
    }
    f
}

fn show(
    state: &AppState,
    page: &Page,
    cart: CartView,
    form: CheckoutForm,
    errors: BTreeMap<String, String>,
    form_error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let ctx = CheckoutPage {
        cart,
        form,
        errors,
        form_error,
        methods: methods(state, page),
        guest: page.principal().is_none(),
        test_gateway: state.config.payments.test_gateway,
        noindex: true,
    };
    let mut res = render(state, page, "storefront/checkout.html", ctx)?;
    *res.status_mut() = status;
    Ok(no_store(res))
}

async fn checkout_page(State(state): State<AppState>, page: Page) -> PageResult {
    let Some(cart) = cart_to_buy(&state, &page).await? else {
        return Ok(redirect_plain("/cart"));
    };
    let form = prefill(&state, &page);
    show(
        &state,
        &page,
        cart,
        form,
        BTreeMap::new(),
        None,
        StatusCode::OK,
    )
}

/// What a placed order leads to, kept by the idempotency guard so a replay of the same
/// form answers the same way.
#[derive(Serialize, Deserialize)]
struct Placed {
    to: String,
    order_cookie: Option<String>,
}

/// A refusal, kept the same way.
#[derive(Serialize, Deserialize)]
struct Refused {
    code: String,
    message: String,
    /// (field, message)
    fields: Vec<(String, String)>,
}

fn field_name(service_field: &str) -> String {
    let f = service_field
        .strip_prefix("shipping_address.")
        .unwrap_or(service_field);
    match f {
        "card.number" | "number" => "card_number".into(),
        "card.exp_month" | "exp_month" => "card_exp_month".into(),
        "card.exp_year" | "exp_year" => "card_exp_year".into(),
        "card.cvc" | "cvc" => "card_cvc".into(),
        "method" => "payment_method".into(),
        other => other.to_string(),
    }
}

fn parse_method(s: &str) -> Result<Method, FieldError> {
    Ok(match s {
        "wallet" => Method::Wallet,
        "card" => Method::Card,
        "hosted" => Method::Hosted,
        "cod" => Method::Cod,
        _ => {
            return Err(FieldError::new(
                "payment_method",
                "required",
                "choose how to pay",
            ));
        }
    })
}

fn card_of(f: &CheckoutForm) -> Result<CardInput, FieldError> {
    let bad = |field: &str| FieldError::new(field, "invalid", "check this field");
    Ok(CardInput {
        number: f
            .card_number
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
        exp_month: f
            .card_exp_month
            .trim()
            .parse()
            .map_err(|_| bad("card_exp_month"))?,
        exp_year: f
            .card_exp_year
            .trim()
            .parse()
            .map_err(|_| bad("card_exp_year"))?,
        cvc: f.card_cvc.trim().to_string(),
    })
}

/// Next page after checkout: the confirm step, the hosted gateway, or the confirmation.
fn next_of(answer: &CheckoutAnswer) -> String {
    let id = answer.order.id;
    match answer
        .payment
        .as_ref()
        .and_then(|p| p.next_action.as_ref().map(|a| (p.payment_id, a)))
    {
        Some((pid, NextAction::Confirm { .. })) => format!("/checkout/confirm/{id}?payment={pid}"),
        Some((_, NextAction::Redirect { url })) => url.clone(),
        _ => format!("/checkout/done/{id}"),
    }
}

async fn run_checkout(
    state: &AppState,
    page: &Page,
    client: &ClientInfo,
    f: &CheckoutForm,
) -> Result<Placed, Error> {
    let mut errors = Vec::new();
    let method = parse_method(&f.payment_method)
        .map_err(|e| errors.push(e))
        .ok();
    let card = match method {
        Some(Method::Card) => card_of(f).map_err(|e| errors.push(e)).ok(),
        _ => None,
    };
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let method =
        method.ok_or_else(|| Error::invalid("payment_method", "required", "choose how to pay"))?;
    let line2 = f.line2.trim();
    let address = Address {
        name: f.name.trim().to_string(),
        line1: f.line1.trim().to_string(),
        line2: (!line2.is_empty()).then(|| line2.to_string()),
        city: f.city.trim().to_string(),
        postal_code: f.postal_code.trim().to_string(),
        country: f.country.trim().to_uppercase(),
    };
    let ip = client.ip.map(|i| i.to_string());
    match page.principal() {
        Some(p) => {
            let input = CheckoutInput {
                shipping_address: address,
                payment_method: method,
                payment_method_id: None,
                card,
                items: None,
            };
            let answer = orders::checkout(state, p, ip, input).await?;
            Ok(Placed {
                to: next_of(&answer),
                order_cookie: None,
            })
        }
        None => {
            let token = page
                .viewer
                .cart_token
                .clone()
                .ok_or_else(|| Error::conflict("cart_empty", "the cart is empty"))?;
            let input = GuestCheckout {
                email: f.email.clone(),
                shipping_address: address,
                payment_method: method,
                card,
            };
            let answer = orders::checkout_guest(state, &token, ip, input).await?;
            let cookie = answer
                .access_token
                .as_ref()
                .map(|t| format!("{}.{t}", answer.order.id));
            Ok(Placed {
                to: next_of(&answer),
                order_cookie: cookie,
            })
        }
    }
}

async fn place_order(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<CheckoutForm>,
) -> PageResult {
    let scope = match (page.principal(), &page.viewer.cart_token) {
        (Some(p), _) => p.user_id.to_string(),
        (None, Some(t)) => {
            use sha2::Digest;
            format!("guest:{}", hex::encode(sha2::Sha256::digest(t.as_bytes())))
        }
        (None, None) => return Ok(redirect_plain("/cart")),
    };
    let mut headers = HeaderMap::new();
    if let Ok(k) = HeaderValue::from_str(form.idempotency_key.trim()) {
        headers.insert(crate::http::idempotency::HEADER, k);
    }
    // The same key and the same form answer the same way; secrets are not part of what is
    // compared beyond their presence.
    let body = serde_json::to_vec(&form).unwrap_or_default();
    let answer = crate::http::idempotency::guard(
        &state,
        &scope,
        "checkout-page",
        &headers,
        &body,
        || async {
            match run_checkout(&state, &page, &client, &form).await {
                Ok(placed) => (StatusCode::OK, axum::Json(placed)).into_response(),
                Err(e) => {
                    let status = crate::http::problem::status_of(&e);
                    if status.is_server_error() {
                        return WebError::from(e).into_response();
                    }
                    let fields = match &e {
                        Error::Validation(f) => f
                            .iter()
                            .map(|f| (f.field.clone(), f.message.clone()))
                            .collect(),
                        _ => Vec::new(),
                    };
                    let r = Refused {
                        code: e.code().to_string(),
                        message: e.to_string(),
                        fields,
                    };
                    (status, axum::Json(r)).into_response()
                }
            }
        },
    )
    .await;
    if answer.status().is_server_error()
        || answer
            .extensions()
            .get::<crate::web::render::ErrorPage>()
            .is_some()
    {
        return Ok(answer);
    }
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20)
        .await
        .map_err(WebError::internal)?;
    if status == StatusCode::OK
        && let Ok(placed) = serde_json::from_slice::<Placed>(&bytes)
    {
        let mut cookies = Vec::new();
        if let Some(c) = placed.order_cookie {
            cookies.push(session::cookie(
                &state,
                ORDER_COOKIE,
                &c,
                Some(7 * 24 * 3600),
            ));
        }
        return Ok(session::redirect_with_cookies(&placed.to, cookies));
    }
    // Refused: the form again, with the messages and a fresh key; nothing was ordered.
    let refused: Option<Refused> = serde_json::from_slice(&bytes).ok();
    let Some(cart) = cart_to_buy(&state, &page).await? else {
        return Ok(redirect_plain("/cart"));
    };
    let i18n = &state.web.i18n;
    let mut errors = BTreeMap::new();
    let form_error = match refused {
        Some(r) if !r.fields.is_empty() => {
            for (field, message) in r.fields {
                errors.entry(field_name(&field)).or_insert(message);
            }
            Some(i18n.t("checkout.fix_fields"))
        }
        Some(r) => Some(
            i18n.lookup(&format!("checkout.refused_{}", r.code))
                .map(String::from)
                .unwrap_or(r.message),
        ),
        None => Some(i18n.t("checkout.try_again")),
    };
    let mut form = form;
    form.idempotency_key = new_key();
    let status = if status.is_client_error() {
        status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    show(&state, &page, cart, form, errors, form_error, status)
}
