//! Orders: checkout (cart → order with one sub-order per vendor, stock reserved, in one
//! transaction), reads with ownership, cancellation with compensation, and vendors moving
//! their sub-orders along `state`'s table. No HTTP types here; payments and timers are
//! in `saga`. It never moves money itself except through the ledger API.

pub mod api;
pub mod cart;
pub mod model;
pub mod pricing;
pub mod queries;
pub mod saga;
pub mod state;
pub mod store;

use crate::app::AppState;
use crate::auth::{Principal, Role, UserId, VendorId};
use crate::error::{Error, FieldError, Result};
use crate::log::event::{Envelope, Event};
use crate::money::Money;
use crate::services::catalog::inventory::{self, ReserveLine};
use crate::services::payments::flows::InitiateInput;
use crate::services::payments::gateway::CardInput;
use crate::services::payments::model::{Method, PaymentMethodId, PaymentView, Purpose};
use model::{
    Address, Line, Order, OrderId, RefundIntent, SubOrder, SubOrderId, Timer, TimerKind, Tracking,
};
use serde::{Deserialize, Serialize};
use state::Status;
use std::collections::BTreeMap;
use store::CartOwner;
use time::OffsetDateTime;

pub use cart::merge_guest_cart;
use queries::sub_view;
pub use queries::{OrderView, SubOrderView, get, list, vendor_get, vendor_list, view};
pub use saga::{run_due, start};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutInput {
    pub shipping_address: Address,
    pub payment_method: Method,
    #[serde(default)]
    pub payment_method_id: Option<PaymentMethodId>,
    #[serde(default)]
    pub card: Option<CardInput>,
}

/// What checkout answers: the order, and the payment with what the payer must do next
/// (or why the payment could not start; the order then waits for a payment until its
/// timeout).
#[derive(Debug, Serialize)]
pub struct CheckoutAnswer {
    pub order: OrderView,
    pub payment: Option<PaymentView>,
    pub payment_error: Option<PaymentError>,
}

#[derive(Debug, Serialize)]
pub struct PaymentError {
    pub code: String,
    pub message: String,
}

fn validate_address(a: &Address) -> Result<()> {
    let mut errors = Vec::new();
    for (field, v, max) in [
        ("shipping_address.name", &a.name, 200),
        ("shipping_address.line1", &a.line1, 200),
        ("shipping_address.city", &a.city, 100),
        ("shipping_address.postal_code", &a.postal_code, 20),
    ] {
        let n = v.trim().chars().count();
        if n == 0 || n > max {
            errors.push(FieldError::new(
                field,
                "invalid_length",
                format!("must be 1 to {max} characters"),
            ));
        }
    }
    if a.line2.as_ref().is_some_and(|l| l.chars().count() > 200) {
        errors.push(FieldError::new(
            "shipping_address.line2",
            "invalid_length",
            "at most 200 characters",
        ));
    }
    if a.country.len() != 2 || !a.country.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new(
            "shipping_address.country",
            "invalid_country",
            "a two-letter upper-case country code such as DE",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

/// Checkout: in ONE transaction re-validates the cart, reserves stock per vendor (all or
/// nothing; 409 naming every line that cannot be served), creates the order with its
/// sub-orders (prices, shipping, tax and commission frozen), empties the cart, sets the
/// payment timeout and emits `Order.Created`. Then starts the payment.
pub async fn checkout(
    state: &AppState,
    p: &Principal,
    client_ip: Option<String>,
    input: CheckoutInput,
) -> Result<CheckoutAnswer> {
    validate_address(&input.shipping_address)?;
    saga::ensure_registered(state);
    let cfg = state.config.orders.clone();
    let currency = cart::currency(state);
    let now = state.clock.now();
    let (user, actor) = (p.user_id, p.actor());
    let address = input.shipping_address.clone();
    let method = input.payment_method;
    let order = state
        .store
        .write(move |tx| {
            let owner = CartOwner::User(user);
            let c = store::cart_in(tx, &owner)?.unwrap_or_default();
            if c.lines.is_empty() {
                return Err(Error::conflict("cart_empty", "the cart is empty"));
            }
            let wtx: &redb::WriteTransaction = tx;
            let resolved = cart::resolve(wtx, &c)?;
            let mut changed = Vec::new();
            let mut short = Vec::new();
            let mut wanted: BTreeMap<_, i64> = BTreeMap::new();
            for r in &resolved {
                *wanted.entry(r.line.variant_id).or_default() += r.line.quantity;
            }
            for r in &resolved {
                let name = r
                    .product
                    .as_ref()
                    .map(|p| p.title.clone())
                    .unwrap_or_else(|| r.line.product_id.to_string());
                if !r.purchasable() {
                    changed.push(format!("\"{name}\" can no longer be bought"));
                } else if r.price() != Some(r.line.price_seen) {
                    changed.push(format!("the price of \"{name}\" changed"));
                } else if r.available < wanted[&r.line.variant_id] {
                    short.push(format!(
                        "\"{name}\": {} available, {} asked (item {})",
                        r.available, r.line.quantity, r.line.id
                    ));
                }
            }
            if !changed.is_empty() {
                return Err(Error::conflict(
                    "cart_changed",
                    format!("review the cart first: {}", changed.join("; ")),
                ));
            }
            if !short.is_empty() {
                return Err(Error::conflict(
                    "out_of_stock",
                    format!("not enough stock: {}", short.join("; ")),
                ));
            }
            let tax_bp = pricing::tax_rate_bp(&cfg, Some(&address.country));
            let mut by_vendor: BTreeMap<VendorId, Vec<&cart::Resolved>> = BTreeMap::new();
            for r in &resolved {
                if let Some(p) = &r.product {
                    by_vendor.entry(p.vendor_id).or_default().push(r);
                }
            }
            let mut subs = Vec::new();
            for (vendor, rs) in by_vendor {
                let lines: Vec<Line> = rs
                    .iter()
                    .filter_map(|r| {
                        let p = r.product.as_ref()?;
                        let v = p.variant(r.line.variant_id)?;
                        Some(Line {
                            product_id: p.id,
                            variant_id: v.id,
                            title: p.title.clone(),
                            sku: v.sku.clone(),
                            unit_price: v.price,
                            quantity: r.line.quantity,
                            returned: 0,
                        })
                    })
                    .collect();
                let reserve: Vec<ReserveLine> = lines
                    .iter()
                    .map(|l| ReserveLine {
                        product_id: l.product_id,
                        variant_id: l.variant_id,
                        quantity: l.quantity,
                    })
                    .collect();
                let reservation = inventory::reserve(tx, &reserve, now)?;
                let t = pricing::part_totals(
                    &cfg,
                    currency,
                    lines.iter().map(|l| (l.unit_price, l.quantity)),
                    tax_bp,
                )?;
                let commission = pricing::commission(t.subtotal, cfg.commission_rate_bp)?;
                subs.push(SubOrder {
                    id: SubOrderId::new(),
                    vendor_id: vendor,
                    status: Status::PendingPayment,
                    lines,
                    subtotal: t.subtotal,
                    shipping: t.shipping,
                    tax: t.tax,
                    total: t.total,
                    commission_rate_bp: cfg.commission_rate_bp,
                    commission,
                    vendor_share: t.total.checked_sub(commission)?,
                    pending_share: 0,
                    booked_commission: 0,
                    reservation_id: reservation.id,
                    tracking: None,
                    delivered_at: None,
                    open_return: None,
                    refunded: 0,
                });
            }
            let sum = |f: fn(&SubOrder) -> Money| Money::sum(currency, subs.iter().map(f));
            let due = now + time::Duration::seconds(cfg.payment_timeout_secs as i64);
            let order = Order {
                id: OrderId::new(),
                user_id: user,
                status: Status::PendingPayment,
                subtotal: sum(|s| s.subtotal)?,
                shipping: sum(|s| s.shipping)?,
                tax: sum(|s| s.tax)?,
                total: sum(|s| s.total)?,
                sub_orders: subs,
                address,
                payment_method: method,
                payment_id: None,
                paid: 0,
                refunded: 0,
                deferred: false,
                pending_refund: None,
                history: Vec::new(),
                created_at: now,
                updated_at: now,
                payment_due_at: due,
                delivered_at: None,
            };
            store::put_order(tx, &order, true)?;
            store::put_cart(tx, &owner, &model::Cart::default())?;
            store::set_timer(
                tx,
                &Timer {
                    order_id: order.id,
                    kind: TimerKind::PaymentTimeout,
                    due_at: due.unix_timestamp(),
                },
            )?;
            let items: Vec<serde_json::Value> = order
                .sub_orders
                .iter()
                .flat_map(|s| {
                    s.lines.iter().map(move |l| {
                        serde_json::json!({
                            "productId": l.product_id, "variantId": l.variant_id,
                            "vendorId": s.vendor_id, "quantity": l.quantity,
                            "unitPrice": l.unit_price.amount,
                        })
                    })
                })
                .collect();
            tx.emit(
                Envelope::new(
                    Event::OrderCreated {
                        order_id: order.id.to_string(),
                        user_id: user.to_string(),
                        items: serde_json::Value::Array(items),
                        total: order.total.amount,
                        timestamp: now,
                    },
                    now,
                )
                .with_actor(actor),
            );
            Ok(order)
        })
        .await?;
    let started = crate::services::payments::initiate(
        state,
        p,
        client_ip,
        InitiateInput {
            purpose: Purpose::Order,
            order_id: Some(order.id.0),
            amount: None,
            method: input.payment_method,
            payment_method_id: input.payment_method_id,
            card: input.card,
            save_method: false,
        },
    )
    .await;
    let (payment, payment_error) = match started {
        Ok(pay) => (Some(PaymentView::of(&pay, false)), None),
        Err(e) => (
            None,
            Some(PaymentError {
                code: e.code().to_string(),
                message: e.to_string(),
            }),
        ),
    };
    saga::run_refund_if_pending(state, order.id).await;
    let rtx = state.store.read()?;
    let order = store::order(&rtx, order.id)?.ok_or_else(|| Error::not_found("order"))?;
    Ok(CheckoutAnswer {
        order: view(&order),
        payment,
        payment_error,
    })
}

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
    let reason = reason.trim().to_string();
    if reason.chars().count() > 500 {
        return Err(Error::invalid(
            "reason",
            "too_long",
            "at most 500 characters",
        ));
    }
    let now = state.clock.now();
    let (caller, admin, actor) = (p.user_id, p.is_admin(), p.actor());
    state
        .store
        .write(move |tx| {
            let mut o = store::order_in(tx, id)?
                .filter(|o| admin || o.user_id == caller)
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
                    if o.sub_orders.iter().all(|s| s.status == Status::Delivered) {
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
