//! Orders: checkout (cart → order with one sub-order per vendor, stock reserved, in one
//! transaction; `checkout`, `guest`), reads with ownership (`queries`), cancellation with
//! compensation, returns (`returns`), and vendors moving their sub-orders along `state`'s
//! table. No HTTP types here; payments and timers are in `saga`. It never moves money
//! itself except through the ledger API.
//!
//! What the storefront calls (no HTTP): `cart::get|add|set_quantity|remove|clear`,
//! `checkout`, `checkout_guest`, `get`, `get_guest`, `list`, `cancel`, `cancel_guest`,
//! `request_return`, `request_return_guest`.

pub mod api;
pub mod cart;
pub mod checkout;
pub mod guest;
pub mod model;
pub mod pricing;
pub mod queries;
pub mod returns;
pub mod saga;
pub mod state;
pub mod store;

use crate::app::AppState;
use crate::auth::{Principal, Role, UserId};
use crate::error::{Error, FieldError, Result};
use crate::money::Money;
use crate::services::catalog::inventory;
use model::{Order, OrderId, RefundIntent, SubOrderId, Timer, TimerKind, Tracking};
use serde::Deserialize;
use state::Status;
use time::OffsetDateTime;

pub use cart::merge_guest_cart;
pub use checkout::{CheckoutAnswer, CheckoutInput, PaymentError, checkout};
pub use guest::{GuestCheckout, cancel_guest, checkout_guest, get_guest, guest_user_id};
use queries::sub_view;
pub use queries::{OrderView, SubOrderView, get, list, vendor_get, vendor_list, view};
pub use returns::{
    ReturnInput, ReturnView, approve_return, receive_return, reject_return, request_return,
    request_return_guest,
};
pub use saga::{run_due, start};

/// The system's stand-in for automated steps (timeouts, refunds): audit trails show it
/// as the nil user.
pub(crate) fn system_principal() -> Principal {
    Principal {
        user_id: UserId(uuid::Uuid::nil()),
        role: Role::Admin,
        vendor_id: None,
        session_id: None,
        via_api_key: None,
    }
}

/// Releases every held reservation of an order, in the caller's transaction.
pub(crate) fn release_all(
    tx: &mut crate::store::Tx<'_>,
    o: &Order,
    actor: &str,
    now: OffsetDateTime,
) -> Result<()> {
    for s in &o.sub_orders {
        inventory::release(tx, s.reservation_id, actor, now)?;
    }
    Ok(())
}

/// Cancels an order (its buyer, or an admin force-cancelling): allowed until a parcel
/// ships; stock is released in the same transaction, and what was paid is refunded
/// (a durable refund step, run now and retried by the timer worker until it succeeds).
pub async fn cancel(
    state: &AppState,
    p: &Principal,
    id: OrderId,
    reason: String,
) -> Result<OrderView> {
    let buyer = guest::buyer(state, p)?;
    cancel_as(state, buyer, p.actor(), id, reason).await
}

/// `cancel` for whoever `buyer` is (a user, an admin, or a guest with the access token).
pub(crate) async fn cancel_as(
    state: &AppState,
    buyer: guest::Buyer,
    actor: String,
    id: OrderId,
    reason: String,
) -> Result<OrderView> {
    let reason = reason.trim().to_string();
    if reason.chars().count() > 500 {
        return Err(Error::invalid(
            "reason",
            "too_long",
            "at most 500 characters",
        ));
    }
    let now = state.clock.now();
    state
        .store
        .write(move |tx| {
            let mut o = store::order_in(tx, id)?
                .filter(|o| buyer.may(o))
                .ok_or_else(|| Error::not_found("order"))?;
            if o.sub_orders.iter().any(|s| {
                !matches!(
                    s.status,
                    Status::PendingPayment | Status::Paid | Status::Processing
                )
            }) && o.status == Status::Paid
            {
                return Err(Error::conflict(
                    "already_shipped",
                    "a parcel of this order has shipped; ask for a return after delivery",
                ));
            }
            let why = if reason.is_empty() {
                "cancelled".to_string()
            } else {
                reason
            };
            o.move_order(tx, Status::Cancelled, &why, &actor, now)?;
            for i in 0..o.sub_orders.len() {
                o.move_sub(tx, i, Status::Cancelled, &why, &actor, now)?;
            }
            release_all(tx, &o, &actor, now)?;
            store::clear_timer(
                tx,
                &Timer {
                    order_id: o.id,
                    kind: TimerKind::PaymentTimeout,
                    due_at: o.payment_due_at.unix_timestamp(),
                },
            )?;
            if o.paid > 0 {
                let takes = o
                    .sub_orders
                    .iter()
                    .map(|s| (s.id, s.pending_share, s.booked_commission))
                    .collect();
                let intent = RefundIntent {
                    amount: Money::new(o.paid - o.refunded, o.total.currency),
                    takes,
                    reason: format!("order cancelled: {why}"),
                };
                saga::plan_refund(tx, &mut o, intent, now)?;
            }
            store::put_order(tx, &o, false)
        })
        .await?;
    saga::run_refund_if_pending(state, id).await;
    let rtx = state.store.read()?;
    let o = store::order(&rtx, id)?.ok_or_else(|| Error::not_found("order"))?;
    Ok(view(&o))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorStatusInput {
    pub status: String,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
}

/// A vendor moves its sub-order: processing → shipped (carrier and tracking number; the
/// reservation is committed, stock leaves on hand) → delivered. When every sub-order is
/// delivered the order is, and its completion timer is set for the end of the return window.
pub async fn vendor_update(
    state: &AppState,
    p: &Principal,
    id: SubOrderId,
    input: VendorStatusInput,
) -> Result<SubOrderView> {
    let to = match Status::parse(&input.status) {
        Some(s @ (Status::Processing | Status::Shipped | Status::Delivered)) => s,
        _ => {
            return Err(Error::invalid(
                "status",
                "invalid_status",
                "one of processing, shipped, delivered",
            ));
        }
    };
    let tracking = match (to, input.carrier, input.tracking_number) {
        (Status::Shipped, Some(c), Some(n))
            if (1..=100).contains(&c.trim().len()) && (1..=100).contains(&n.trim().len()) =>
        {
            Some(Tracking {
                carrier: c.trim().to_string(),
                number: n.trim().to_string(),
            })
        }
        (Status::Shipped, _, _) => {
            return Err(Error::Validation(vec![FieldError::new(
                "tracking_number",
                "required",
                "shipping needs a carrier and a tracking number (1 to 100 characters each)",
            )]));
        }
        (_, None, None) => None,
        _ => {
            return Err(Error::invalid(
                "tracking_number",
                "not_allowed",
                "carrier and tracking_number only with status shipped",
            ));
        }
    };
    let now = state.clock.now();
    let window = time::Duration::days(state.config.orders.return_window_days as i64);
    let (caller, actor) = (p.clone(), p.actor());
    let o = state
        .store
        .write(move |tx| {
            let oid = store::order_of_sub_in(tx, id)?.ok_or_else(|| Error::not_found("order"))?;
            let mut o = store::order_in(tx, oid)?.ok_or_else(|| Error::not_found("order"))?;
            let i = o.sub_index(id).ok_or_else(|| Error::not_found("order"))?;
            caller
                .require_vendor_of(o.sub_orders[i].vendor_id)
                .map_err(|_| Error::not_found("order"))?;
            if o.status != Status::Paid {
                return Err(Error::conflict(
                    "illegal_transition",
                    format!("the order is {}, not paid", o.status.as_str()),
                ));
            }
            o.move_sub(tx, i, to, "vendor update", &actor, now)?;
            match to {
                Status::Shipped => {
                    o.sub_orders[i].tracking = tracking;
                    inventory::commit(tx, o.sub_orders[i].reservation_id, &actor, now)?;
                }
                Status::Delivered => {
                    o.sub_orders[i].delivered_at = Some(now);
                    // A part delivered earlier may already be in a return: it counts.
                    let arrived = |s: &model::SubOrder| {
                        matches!(
                            s.status,
                            Status::Delivered
                                | Status::ReturnRequested
                                | Status::Returned
                                | Status::Refunded
                        )
                    };
                    if o.sub_orders.iter().all(arrived) {
                        o.move_order(tx, Status::Delivered, "every parcel delivered", &actor, now)?;
                        o.delivered_at = Some(now);
                        store::set_timer(
                            tx,
                            &Timer {
                                order_id: o.id,
                                kind: TimerKind::Complete,
                                due_at: (now + window).unix_timestamp(),
                            },
                        )?;
                    }
                }
                _ => {}
            }
            store::put_order(tx, &o, false)?;
            Ok(o)
        })
        .await?;
    let s = o
        .sub_orders
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::not_found("order"))?;
    Ok(sub_view(&o, s))
}
