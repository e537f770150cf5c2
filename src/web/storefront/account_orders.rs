//! /account/orders: the customer's orders with their status, one order with its timeline,
//! cancelling while allowed, and asking to return delivered lines within the return
//! window. Whose order it is, is the orders service's question: someone else's is 404.

use super::{FormErrors, error_sentence, field_message, no_store, render_status, when};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::money::Money;
use crate::services::PageQuery;
use crate::services::orders::model::{LineId, OrderId};
use crate::services::orders::returns::{self, ReturnInput};
use crate::services::orders::state::Status;
use crate::services::orders::{self, OrderView, SubOrderView};
use crate::web::{CsrfForm, Flash, PageResult, SignedIn, WebError, redirect, urlencode};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/orders", get(orders_page))
        .route("/account/orders/{id}", get(order_page))
        .route("/account/orders/{id}/cancel", post(cancel))
        .route("/account/orders/{id}/return", post(request_return))
}

const PAGE_SIZE: usize = 20;

#[derive(Serialize)]
struct OrderRow {
    id: String,
    url: String,
    placed: String,
    status: &'static str,
    total: Money,
    items: i64,
    parts: usize,
}

#[derive(Serialize)]
struct OrdersPage {
    section: &'static str,
    orders: Vec<OrderRow>,
    next_url: Option<String>,
    first_page: bool,
}

#[derive(Deserialize, Default)]
struct CursorQuery {
    #[serde(default)]
    cursor: Option<String>,
}

async fn orders_page(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Query(q): Query<CursorQuery>,
) -> PageResult {
    let first_page = q.cursor.is_none();
    let pq = PageQuery {
        cursor: q.cursor,
        limit: Some(PAGE_SIZE),
    };
    let list = match orders::list(&state, &p, &pq, None, false) {
        Ok(l) => l,
        // A cursor this list never gave out: start again from the newest.
        Err(Error::Validation(_)) => return Ok(crate::web::redirect_plain("/account/orders")),
        Err(e) => return Err(e.into()),
    };
    let rows = list
        .items
        .iter()
        .map(|o| OrderRow {
            id: o.id.to_string(),
            url: format!("/account/orders/{}", o.id),
            placed: when(o.created_at),
            status: o.status.as_str(),
            total: o.total,
            items: o
                .sub_orders
                .iter()
                .flat_map(|s| s.lines.iter())
                .map(|l| l.quantity)
                .sum(),
            parts: o.sub_orders.len(),
        })
        .collect();
    let ctx = OrdersPage {
        section: "orders",
        orders: rows,
        next_url: list
            .next_cursor
            .map(|c| format!("/account/orders?cursor={}", urlencode(&c))),
        first_page,
    };
    render_status(
        &state,
        &page,
        "storefront/account/orders.html",
        ctx,
        StatusCode::OK,
    )
}

// ---------------------------------------------------------------------------------------
// One order

#[derive(Serialize)]
struct LineRow {
    id: String,
    title: String,
    /// The product page, while the product can still be seen.
    url: Option<String>,
    sku: String,
    unit_price: Money,
    quantity: i64,
    total: Money,
    returned: i64,
    /// Units that may still be asked back (0 when no return can be asked now).
    returnable: i64,
}

#[derive(Serialize)]
struct ReturnRow {
    status: String,
    reason: String,
    amount: Money,
    requested: String,
    note: Option<String>,
    lines: Vec<(String, i64)>,
}

#[derive(Serialize)]
struct PartRow {
    number: usize,
    /// The vendor's name, while its products can be seen.
    vendor: Option<String>,
    status: &'static str,
    lines: Vec<LineRow>,
    subtotal: Money,
    shipping: Money,
    tax: Money,
    total: Money,
    refunded: Money,
    carrier: Option<String>,
    tracking_number: Option<String>,
    returns: Vec<ReturnRow>,
    /// The last day a return may be asked, while it is still open.
    return_until: Option<String>,
}

#[derive(Serialize)]
struct TimelineRow {
    at: String,
    /// `None` for the order itself, else the part's number.
    part: Option<usize>,
    from: &'static str,
    to: &'static str,
    reason: String,
}

#[derive(Serialize)]
struct OrderPage {
    section: &'static str,
    id: String,
    placed: String,
    status: &'static str,
    parts: Vec<PartRow>,
    subtotal: Money,
    shipping: Money,
    tax: Money,
    total: Money,
    paid: Money,
    refunded: Money,
    address: orders::model::Address,
    payment_method: &'static str,
    timeline: Vec<TimelineRow>,
    can_cancel: bool,
    cancel_url: String,
    return_url: String,
    errors: FormErrors,
    form_error: Option<String>,
    /// Which line's return form the errors belong to.
    error_line: Option<String>,
}

/// Whether the buyer may cancel now: the order is unpaid or paid and no parcel has left.
fn can_cancel(o: &OrderView) -> bool {
    matches!(o.status, Status::PendingPayment | Status::Paid)
        && o.sub_orders.iter().all(|s| {
            matches!(
                s.status,
                Status::PendingPayment | Status::Paid | Status::Processing
            )
        })
}

/// When a delivered part's return window closes, if it is still open at `now`.
fn return_deadline(
    state: &AppState,
    s: &SubOrderView,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    if s.status != Status::Delivered || s.returns.iter().any(|r| r.status.is_open()) {
        return None;
    }
    let delivered = s
        .timeline
        .iter()
        .rev()
        .find(|h| h.sub_order_id == Some(s.id) && h.to == Status::Delivered)?
        .at;
    let days = state.config.orders.return_window_days as i64;
    let until = delivered + time::Duration::days(days);
    (now < until).then_some(until)
}

/// The product behind an order line as the buyer may see it now: its page and vendor
/// (none once it is hidden, e.g. its vendor suspended).
fn product_of(
    state: &AppState,
    p: &Principal,
    l: &orders::model::Line,
) -> Option<(String, String)> {
    let (v, _) =
        crate::services::catalog::queries::product_for(state, Some(p), &l.product_id.to_string())
            .ok()?;
    Some((format!("/p/{}", v.slug), v.vendor.name))
}

fn part_row(
    state: &AppState,
    p: &Principal,
    number: usize,
    s: &SubOrderView,
    now: OffsetDateTime,
) -> PartRow {
    let deadline = return_deadline(state, s, now);
    let products: Vec<Option<(String, String)>> =
        s.lines.iter().map(|l| product_of(state, p, l)).collect();
    let title_of = |id: LineId| {
        s.lines
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.title.clone())
            .unwrap_or_default()
    };
    PartRow {
        number,
        vendor: products.iter().flatten().map(|(_, v)| v.clone()).next(),
        status: s.status.as_str(),
        lines: s
            .lines
            .iter()
            .zip(&products)
            .map(|(l, prod)| LineRow {
                id: l.id.to_string(),
                title: l.title.clone(),
                url: prod.as_ref().map(|(u, _)| u.clone()),
                sku: l.sku.clone(),
                unit_price: l.unit_price,
                quantity: l.quantity,
                total: Money::new(
                    l.unit_price.amount.saturating_mul(l.quantity),
                    l.unit_price.currency,
                ),
                returned: l.returned,
                returnable: if deadline.is_some() {
                    (l.quantity - l.returned).max(0)
                } else {
                    0
                },
            })
            .collect(),
        subtotal: s.subtotal,
        shipping: s.shipping,
        tax: s.tax,
        total: s.total,
        refunded: s.refunded,
        carrier: s.tracking.as_ref().map(|t| t.carrier.clone()),
        tracking_number: s.tracking.as_ref().map(|t| t.number.clone()),
        returns: s
            .returns
            .iter()
            .map(|r| ReturnRow {
                status: serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                reason: r.reason.clone(),
                amount: r.amount,
                requested: when(r.requested_at),
                note: r.note.clone(),
                lines: r
                    .lines
                    .iter()
                    .map(|l| (title_of(l.line_id), l.quantity))
                    .collect(),
            })
            .collect(),
        return_until: deadline.map(when),
    }
}

fn order_ctx(state: &AppState, p: &Principal, o: &OrderView) -> OrderPage {
    let now = state.clock.now();
    let number_of = |sid| o.sub_orders.iter().position(|s| s.id == sid).map(|i| i + 1);
    OrderPage {
        section: "orders",
        id: o.id.to_string(),
        placed: when(o.created_at),
        status: o.status.as_str(),
        parts: o
            .sub_orders
            .iter()
            .enumerate()
            .map(|(i, s)| part_row(state, p, i + 1, s, now))
            .collect(),
        subtotal: o.subtotal,
        shipping: o.shipping,
        tax: o.tax,
        total: o.total,
        paid: o.paid,
        refunded: o.refunded,
        address: o.shipping_address.clone(),
        payment_method: o.payment_method.as_str(),
        timeline: o
            .timeline
            .iter()
            .map(|h| TimelineRow {
                at: when(h.at),
                part: h.sub_order_id.and_then(number_of),
                from: h.from.as_str(),
                to: h.to.as_str(),
                reason: h.reason.clone(),
            })
            .collect(),
        can_cancel: can_cancel(o),
        cancel_url: format!("/account/orders/{}/cancel", o.id),
        return_url: format!("/account/orders/{}/return", o.id),
        errors: FormErrors::new(),
        form_error: None,
        error_line: None,
    }
}

/// The order if it is the caller's; anything else (a malformed id, another customer's
/// order) is the same 404.
fn load(state: &AppState, p: &Principal, id: &str) -> Result<(OrderId, OrderView), WebError> {
    let oid: OrderId = id.parse().map_err(|_| WebError::not_found())?;
    let o = orders::get(state, p, oid)?;
    Ok((oid, o))
}

async fn order_page(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let (_, o) = load(&state, &p, &id)?;
    let ctx = order_ctx(&state, &p, &o);
    Ok(no_store(crate::web::render(
        &state,
        &page,
        "storefront/account/order.html",
        ctx,
    )?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: String,
}

async fn cancel(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Path(id): Path<String>,
    CsrfForm(body): CsrfForm<CancelBody>,
) -> PageResult {
    let (oid, o) = load(&state, &p, &id)?;
    let url = format!("/account/orders/{oid}");
    match orders::cancel(&state, &p, oid, body.reason).await {
        Ok(after) => {
            let i18n = &state.web.i18n;
            let refunded = after.refunded.amount - o.refunded.amount;
            let msg = if refunded > 0 {
                let amount = crate::web::i18n::money(refunded, after.refunded.currency.as_str());
                let key =
                    if after.payment_method == crate::services::payments::model::Method::Wallet {
                        "account.orders.cancelled_refunded"
                    } else {
                        "account.orders.cancelled_refunded_other"
                    };
                i18n.t_with(key, &[("amount", &amount)])
            } else {
                i18n.t("account.orders.cancelled")
            };
            Ok(redirect(&state, &url, Flash::success(msg)))
        }
        Err(Error::Validation(fields)) => {
            let mut ctx = order_ctx(&state, &p, &o);
            ctx.form_error = fields.first().map(|f| field_message(&state, f));
            render_status(
                &state,
                &page,
                "storefront/account/order.html",
                ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e @ Error::Conflict { .. }) => Ok(redirect(
            &state,
            &url,
            Flash::error(error_sentence(&state, &e)),
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnBody {
    line: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    reason: String,
}

async fn request_return(
    State(state): State<AppState>,
    SignedIn(page, p): SignedIn,
    Path(id): Path<String>,
    CsrfForm(body): CsrfForm<ReturnBody>,
) -> PageResult {
    let (oid, o) = load(&state, &p, &id)?;
    let url = format!("/account/orders/{oid}");
    let line: LineId = body.line.parse().map_err(|_| WebError::not_found())?;
    let refuse = |errors: FormErrors, form_error: Option<String>| {
        let mut ctx = order_ctx(&state, &p, &o);
        ctx.errors = errors;
        ctx.form_error = form_error;
        ctx.error_line = Some(body.line.clone());
        render_status(
            &state,
            &page,
            "storefront/account/order.html",
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let Ok(quantity) = body.quantity.trim().parse::<i64>() else {
        let mut errors = FormErrors::new();
        errors.insert(
            "quantity".into(),
            state.web.i18n.t("account.errors.quantity"),
        );
        return refuse(errors, None);
    };
    let input = ReturnInput {
        lines: vec![line],
        quantities: vec![quantity],
        reason: body.reason.clone(),
    };
    match returns::request_return(&state, &p, oid, input).await {
        Ok(_) => Ok(redirect(
            &state,
            &url,
            Flash::success(state.web.i18n.t("account.orders.return_requested")),
        )),
        Err(Error::Validation(fields)) => {
            let mut errors = FormErrors::new();
            let mut form_error = None;
            for f in &fields {
                let name = if f.field.starts_with("quantities") {
                    "quantity"
                } else if f.field == "reason" {
                    "reason"
                } else {
                    form_error.get_or_insert_with(|| field_message(&state, f));
                    continue;
                };
                errors
                    .entry(name.to_string())
                    .or_insert_with(|| field_message(&state, f));
            }
            refuse(errors, form_error)
        }
        Err(e @ Error::Conflict { .. }) => {
            refuse(FormErrors::new(), Some(error_sentence(&state, &e)))
        }
        Err(e) => Err(e.into()),
    }
}
