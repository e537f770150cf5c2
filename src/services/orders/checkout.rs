//! Checkout: a cart becomes one order with a sub-order per vendor in ONE transaction
//! (cart re-validated, stock reserved, prices, shipping, tax and commission frozen, cart
//! emptied, `Order.Created`), then the payment starts. Signed-in buyers and guests
//! (`guest`) share `place` and `start_payment`. No HTTP types here.

use super::cart;
use super::model::{
    self, Address, Line, LineId, Order, OrderId, SubOrder, SubOrderId, Timer, TimerKind,
};
use super::pricing::{self, ShippingRule};
use super::queries::{OrderView, view};
use super::saga;
use super::state::Status;
use super::store::{self, CartOwner};
use crate::app::AppState;
use crate::auth::{Principal, UserId, VendorId};
use crate::config::OrdersConfig;
use crate::error::{Error, FieldError, Result};
use crate::log::event::{Envelope, Event};
use crate::money::Currency;
use crate::money::Money;
use crate::services::catalog::inventory::{self, ReserveLine};
use crate::services::payments::LocalPayment;
use crate::services::payments::flows::InitiateInput;
use crate::services::payments::gateway::CardInput;
use crate::services::payments::model::{Method, PaymentMethodId, PaymentView, Purpose};
use crate::store::Tx;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutInput {
    pub shipping_address: Address,
    pub payment_method: Method,
    #[serde(default)]
    pub payment_method_id: Option<PaymentMethodId>,
    #[serde(default)]
    pub card: Option<CardInput>,
    /// "Buy now": order these items instead of the cart, which stays as it is.
    #[serde(default)]
    pub items: Option<Vec<cart::AddInput>>,
}

/// What checkout answers: the order, and the payment with what the payer must do next
/// (or why the payment could not start; the order then waits for a payment until its
/// timeout).
#[derive(Debug, Serialize)]
pub struct CheckoutAnswer {
    pub order: OrderView,
    pub payment: Option<PaymentView>,
    pub payment_error: Option<PaymentError>,
    /// Guest checkouts only: the order's access token, shown this once (keep it: it is
    /// how a guest reads, cancels or returns the order; only its hash is stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PaymentError {
    pub code: String,
    pub message: String,
}

pub(super) fn validate_address(a: &Address) -> Result<()> {
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

/// Checkout for a signed-in buyer: in ONE transaction re-validates the cart, reserves
/// stock per vendor (all or nothing; 409 naming every line that cannot be served),
/// creates the order with its sub-orders (prices, shipping by each vendor's rule, tax
/// and commission frozen), empties the cart, sets the payment timeout and emits
/// `Order.Created`. Then starts the payment (`payment` or `payment_error` in the answer).
pub async fn checkout(
    state: &AppState,
    p: &Principal,
    client_ip: Option<String>,
    input: CheckoutInput,
) -> Result<CheckoutAnswer> {
    validate_address(&input.shipping_address)?;
    let who = Placement {
        owner: CartOwner::User(p.user_id),
        user: p.user_id,
        actor: p.actor(),
        guest_email: None,
        access_hash: None,
        items: input.items,
    };
    let choice = PaymentChoice {
        method: input.payment_method,
        payment_method_id: input.payment_method_id,
        card: input.card,
    };
    let id = OrderId::new();
    let local = LocalPayment::prepare(state, p, client_ip.clone(), payment_input(id, &choice));
    let local = match local {
        Ok(Some(local)) => local,
        // Cards and the hosted page call out between transactions; a payment that
        // cannot start is reported next to the order, as before.
        Ok(None) | Err(_) => {
            let order = place(state, who, input.shipping_address, choice.method, id).await?;
            return start_payment(state, p, client_ip, order.id, choice, None).await;
        }
    };
    // A wallet payment needs no outside call: the order and its payment are one
    // transaction, so the buyer waits for one commit, not two.
    saga::ensure_registered(state);
    let (cfg, currency, now) = (
        state.config.orders.clone(),
        cart::currency(state),
        state.clock.now(),
    );
    let address = input.shipping_address;
    let (order, payment) = state
        .store
        .write(move |tx| {
            let order = place_in(tx, &cfg, currency, now, who, address, choice.method, id)?;
            if order.total.amount <= 0 {
                return Ok((order, None));
            }
            let due = saga::due_of(&order);
            Ok((order, Some(local.record_in(tx, due)?)))
        })
        .await?;
    let payment_error = match &payment {
        Some(_) => None,
        None => Some(PaymentError {
            code: "nothing_due".into(),
            message: "nothing is due on this order".into(),
        }),
    };
    answer(
        state,
        order.id,
        payment.map(|pay| PaymentView::of(&pay, false)),
        payment_error,
        None,
    )
    .await
}

/// Whose cart becomes an order (or which items, bought at once), and who owns the order.
#[derive(Clone)]
pub(super) struct Placement {
    pub owner: CartOwner,
    pub user: UserId,
    pub actor: String,
    pub guest_email: Option<String>,
    pub access_hash: Option<String>,
    /// `None`: the owner's cart, emptied by the order.
    pub items: Option<Vec<cart::AddInput>>,
}

/// How the buyer pays.
pub(super) struct PaymentChoice {
    pub method: Method,
    pub payment_method_id: Option<PaymentMethodId>,
    pub card: Option<CardInput>,
}

/// The checkout transaction: the cart of `who.owner` becomes order `id` of `who.user`.
pub(super) async fn place(
    state: &AppState,
    who: Placement,
    address: Address,
    method: Method,
    id: OrderId,
) -> Result<Order> {
    saga::ensure_registered(state);
    let cfg = state.config.orders.clone();
    let currency = cart::currency(state);
    let now = state.clock.now();
    state
        .store
        .write(move |tx| place_in(tx, &cfg, currency, now, who, address, method, id))
        .await
}

/// [`place`] in the caller's transaction.
#[allow(clippy::too_many_arguments)]
fn place_in(
    tx: &mut Tx<'_>,
    cfg: &OrdersConfig,
    currency: Currency,
    now: OffsetDateTime,
    who: Placement,
    address: Address,
    method: Method,
    id: OrderId,
) -> Result<Order> {
    let Placement {
        owner,
        user,
        actor,
        guest_email,
        access_hash,
        items,
    } = who;
    let c = match &items {
        None => store::cart_in(tx, &owner)?.unwrap_or_default(),
        Some(items) => cart::of_items(tx, cfg, items, now)?,
    };
    if c.lines.is_empty() {
        return Err(Error::conflict("cart_empty", "the cart is empty"));
    }
    let wtx: &redb::WriteTransaction = tx;
    let resolved = cart::resolve(wtx, cfg, &c)?;
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
    let tax_bp = pricing::tax_rate_bp(cfg, Some(&address.country));
    let mut by_vendor: BTreeMap<VendorId, Vec<&cart::Resolved>> = BTreeMap::new();
    for r in &resolved {
        if let Some(p) = &r.product {
            by_vendor.entry(p.vendor_id).or_default().push(r);
        }
    }
    let mut subs = Vec::new();
    for (vendor, rs) in by_vendor {
        let rule = rs
            .first()
            .map(|r| r.shipping)
            .unwrap_or_else(|| ShippingRule::defaults(cfg));
        let lines: Vec<Line> = rs
            .iter()
            .filter_map(|r| {
                let p = r.product.as_ref()?;
                let v = p.variant(r.line.variant_id)?;
                Some(Line {
                    id: LineId::new(),
                    product_id: p.id,
                    variant_id: v.id,
                    title: p.title.clone(),
                    sku: v.sku.clone(),
                    unit_price: v.price,
                    quantity: r.line.quantity,
                    returned: 0,
                    restocked: 0,
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
            cfg,
            currency,
            lines.iter().map(|l| (l.unit_price, l.quantity)),
            tax_bp,
            rule,
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
            returns: Vec::new(),
            refunded: 0,
        });
    }
    let sum = |f: fn(&SubOrder) -> Money| Money::sum(currency, subs.iter().map(f));
    let due = now + time::Duration::seconds(cfg.payment_timeout_secs as i64);
    let order = Order {
        id,
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
        queued_refunds: Vec::new(),
        tax_rate_bp: Some(tax_bp),
        guest_email,
        access_hash,
        history: Vec::new(),
        created_at: now,
        updated_at: now,
        payment_due_at: due,
        delivered_at: None,
    };
    store::put_order(tx, &order, true)?;
    if items.is_none() {
        store::put_cart(tx, &owner, &model::Cart::default())?;
    }
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
}

/// Starts the order's payment as `payer` and answers with the order as it then stands.
pub(super) async fn start_payment(
    state: &AppState,
    payer: &Principal,
    client_ip: Option<String>,
    order: OrderId,
    choice: PaymentChoice,
    access_token: Option<String>,
) -> Result<CheckoutAnswer> {
    let started =
        crate::services::payments::initiate(state, payer, client_ip, payment_input(order, &choice))
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
    answer(state, order, payment, payment_error, access_token).await
}

fn payment_input(order: OrderId, choice: &PaymentChoice) -> InitiateInput {
    InitiateInput {
        purpose: Purpose::Order,
        order_id: Some(order.0),
        amount: None,
        method: choice.method,
        payment_method_id: choice.payment_method_id,
        card: choice.card.clone(),
        save_method: false,
    }
}

/// The checkout's answer: the order as it stands once its payment has started.
async fn answer(
    state: &AppState,
    order: OrderId,
    payment: Option<PaymentView>,
    payment_error: Option<PaymentError>,
    access_token: Option<String>,
) -> Result<CheckoutAnswer> {
    saga::run_refund_if_pending(state, order).await;
    let rtx = state.store.read()?;
    let order = store::order(&rtx, order)?.ok_or_else(|| Error::not_found("order"))?;
    Ok(CheckoutAnswer {
        order: view(&order),
        payment,
        payment_error,
        access_token,
    })
}
