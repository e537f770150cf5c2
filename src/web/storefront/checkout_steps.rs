//! After "place order": the payment's confirmation step when the gateway asks for one
//! (the test card's 3-D Secure stand-in) and the confirmation page. A signed-in buyer sees
//! their own orders; a guest proves theirs with the access token kept in `souk_order`.

use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::error::Error;
use crate::services::orders::model::OrderId;
use crate::services::orders::{self, OrderView};
use crate::services::payments::model::{NextAction, PaymentId};
use crate::services::payments::queries::PaymentAnswer;
use crate::web::{CsrfForm, Page, PageResult, WebError, no_store, redirect_plain, render};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout/confirm/{order}", get(confirm_page).post(confirm))
        .route("/checkout/done/{order}", get(done_page))
}

/// The order this browser may see, and who pays for it (the guest identity for guests).
fn order_for(state: &AppState, page: &Page, id: &str) -> Result<(OrderView, Principal), WebError> {
    let id: OrderId = id.parse().map_err(|_| WebError::not_found())?;
    if let Some(p) = page.principal()
        && let Ok(o) = orders::get(state, p, id)
    {
        return Ok((o, p.clone()));
    }
    let raw = page_cookie(page).ok_or_else(WebError::not_found)?;
    let (cid, token) = raw.split_once('.').ok_or_else(WebError::not_found)?;
    if cid != id.to_string() {
        return Err(WebError::not_found());
    }
    let o = orders::get_guest(state, id, token)?;
    let payer = Principal {
        user_id: o.user_id,
        role: Role::Customer,
        vendor_id: None,
        session_id: None,
        via_api_key: None,
    };
    Ok((o, payer))
}

fn page_cookie(page: &Page) -> Option<String> {
    page.viewer.order_cookie.clone()
}

#[derive(Serialize)]
struct ConfirmPage {
    order: OrderView,
    payment_id: String,
    message: String,
    error: Option<String>,
    test_gateway: bool,
    noindex: bool,
}

/// The order's payment: the one the order records, or the one named in the request
/// (a payment still waiting for its confirmation), if it is this payer's for this order.
fn payment_view(
    state: &AppState,
    payer: &Principal,
    o: &OrderView,
    named: Option<&str>,
) -> Option<crate::services::payments::model::PaymentView> {
    let id: PaymentId = match o.payment_id {
        Some(id) => id,
        None => named?.parse().ok()?,
    };
    match crate::services::payments::queries::payment(state, payer, id).ok()? {
        PaymentAnswer::Full(v) if v.order_id == Some(o.id.0) => Some(*v),
        _ => None,
    }
}

#[derive(Deserialize)]
struct PaymentQuery {
    payment: Option<String>,
    /// Why the payment could not start (the order waits for a payment until its timeout).
    error: Option<String>,
}

async fn confirm_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<PaymentQuery>,
) -> PageResult {
    let (order, payer) = order_for(&state, &page, &id)?;
    let pay = payment_view(&state, &payer, &order, q.payment.as_deref());
    let (payment_id, message) = match pay.map(|p| (p.payment_id, p.next_action)) {
        Some((pid, Some(NextAction::Confirm { message }))) => (pid.to_string(), message),
        _ => return Ok(redirect_plain(&format!("/checkout/done/{}", order.id))),
    };
    let ctx = ConfirmPage {
        order,
        payment_id,
        message,
        error: None,
        test_gateway: state.config.payments.test_gateway,
        noindex: true,
    };
    Ok(no_store(render(
        &state,
        &page,
        "storefront/confirm.html",
        ctx,
    )?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmForm {
    code: String,
    payment_id: String,
}

async fn confirm(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> PageResult {
    let (order, payer) = order_for(&state, &page, &id)?;
    let Some(pay) = payment_view(&state, &payer, &order, Some(&form.payment_id)) else {
        return Ok(redirect_plain(&format!("/checkout/done/{}", order.id)));
    };
    let pid = pay.payment_id;
    match crate::services::payments::confirm(&state, &payer, pid, form.code.trim().to_string())
        .await
    {
        Ok(_) => Ok(redirect_plain(&format!(
            "/checkout/done/{}?payment={pid}",
            order.id
        ))),
        Err(e @ (Error::Validation(_) | Error::BadRequest(_))) => {
            let message = match pay.next_action {
                Some(NextAction::Confirm { message }) => message,
                _ => String::new(),
            };
            let ctx = ConfirmPage {
                order,
                payment_id: pid.to_string(),
                message,
                error: Some(e.to_string()),
                test_gateway: state.config.payments.test_gateway,
                noindex: true,
            };
            let mut res = render(&state, &page, "storefront/confirm.html", ctx)?;
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(no_store(res))
        }
        // Declined after the code, or no longer waiting: the confirmation page says how it stands.
        Err(Error::Conflict { .. }) | Err(Error::Unauthorized(_)) => Ok(redirect_plain(&format!(
            "/checkout/done/{}?payment={pid}",
            order.id
        ))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize)]
struct DonePage {
    order: OrderView,
    payment_status: String,
    payment_failure: Option<String>,
    guest: bool,
    test_mode: bool,
    noindex: bool,
}

async fn done_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<PaymentQuery>,
) -> PageResult {
    let (order, payer) = order_for(&state, &page, &id)?;
    let pay = payment_view(&state, &payer, &order, q.payment.as_deref());
    let i18n = &state.web.i18n;
    // A payment that never started reads like a failed one, named by its code.
    let not_started = q.error.as_deref().filter(|_| pay.is_none()).map(|code| {
        i18n.lookup(&format!("checkout.payment_error_{code}"))
            .map(String::from)
            .unwrap_or_else(|| i18n.t("checkout.payment_error"))
    });
    let ctx = DonePage {
        payment_status: match (&pay, &not_started) {
            (Some(p), _) => p.status.to_string(),
            (None, Some(_)) => "failed".into(),
            (None, None) => String::new(),
        },
        payment_failure: pay
            .as_ref()
            .and_then(|p| p.failure_reason.clone())
            .or(not_started),
        test_mode: pay.as_ref().is_some_and(|p| p.test_mode),
        guest: page.principal().is_none(),
        order,
        noindex: true,
    };
    Ok(no_store(render(
        &state,
        &page,
        "storefront/done.html",
        ctx,
    )?))
}
