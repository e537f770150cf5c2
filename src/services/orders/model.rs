//! The order service's types as stored: carts, orders with one sub-order per vendor,
//! their history, refund intents and durable timers. Status changes go through
//! [`Order::move_order`] / [`Order::move_sub`], which consult `state`'s table, append to
//! the history and emit `Order.StatusChanged`. No table and no HTTP here.

use super::state::{self, Level, Status};
use crate::auth::{UserId, VendorId};
use crate::error::{Error, Result};
use crate::log::event::{Envelope, Event};
use crate::money::Money;
use crate::services::catalog::model::{ProductId, ReservationId, VariantId};
use crate::services::payments::model::{Method, PaymentId};
use crate::store::Tx;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

crate::id_type!(
    /// One order (what a buyer checked out at once).
    OrderId
);
crate::id_type!(
    /// One vendor's part of an order.
    SubOrderId
);
crate::id_type!(
    /// One line of a cart.
    CartItemId
);
crate::id_type!(
    /// One ordered line (what a return names).
    LineId
);
crate::id_type!(
    /// One return a buyer asked for (one vendor's part of an order).
    ReturnId
);

/// A cart line: what was asked for and the price seen when it was added or last changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CartLine {
    pub id: CartItemId,
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub quantity: i64,
    pub price_seen: Money,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cart {
    pub lines: Vec<CartLine>,
}

/// Where the parcels go. Validated on input; `country` chooses the tax rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166 alpha-2, upper case.
    pub country: String,
}

/// One ordered line with its price frozen at checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Made at checkout; records written before line ids existed get a new one.
    #[serde(default)]
    pub id: LineId,
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub title: String,
    pub sku: String,
    pub unit_price: Money,
    pub quantity: i64,
    /// Units of this line returned (and refunded) so far.
    #[serde(default)]
    pub returned: i64,
    /// Units of this line put back on hand after a return.
    #[serde(default)]
    pub restocked: i64,
}

/// Shipping details a vendor gives when it ships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracking {
    pub carrier: String,
    pub number: String,
}

/// Where a return stands. The sub-order's own state (return_requested → returned →
/// refunded) moves with it through the state table; approval is a step of the return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    /// The buyer asked; the vendor has not answered.
    Requested,
    /// The vendor agreed; the goods are on their way back.
    Approved,
    /// The vendor refused; the sub-order went back to where it was.
    Rejected,
    /// The vendor has the goods; the refund is under way.
    Received,
    /// The money went back to the buyer.
    Refunded,
}

impl ReturnStatus {
    /// Still being handled (blocks completion and another return of the same part).
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            ReturnStatus::Requested | ReturnStatus::Approved | ReturnStatus::Received
        )
    }
}

/// One line of a return: which ordered line, how many units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub line_id: LineId,
    pub quantity: i64,
}

/// A return the buyer asked for, of lines of one vendor's part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Return {
    pub id: ReturnId,
    pub status: ReturnStatus,
    pub lines: Vec<ReturnLine>,
    pub reason: String,
    /// What goes back to the buyer once received: the goods at their frozen price, plus
    /// the tax on them when tax was added on top. Shipping is not refunded.
    pub amount: Money,
    /// The sub-order's state before the request (where a rejection sends it back).
    pub resumes: Status,
    #[serde(default)]
    pub restock: bool,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub received_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub refunded_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubOrder {
    pub id: SubOrderId,
    pub vendor_id: VendorId,
    pub status: Status,
    pub lines: Vec<Line>,
    pub subtotal: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
    /// The commission rate in basis points, frozen at checkout.
    pub commission_rate_bp: u32,
    pub commission: Money,
    /// What the vendor gets of `total` (total − commission).
    pub vendor_share: Money,
    /// Share still in `vendor_pending` (after refunds taken back from it).
    #[serde(default)]
    pub pending_share: i64,
    /// Commission still booked for this part (after refunds taken back from it).
    #[serde(default)]
    pub booked_commission: i64,
    pub reservation_id: ReservationId,
    #[serde(default)]
    pub tracking: Option<Tracking>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    /// Every return asked of this part, oldest first; at most one open at a time.
    #[serde(default)]
    pub returns: Vec<Return>,
    /// Refunded for returns of this part so far.
    #[serde(default)]
    pub refunded: i64,
}

/// One change in an order's life; the order's state is the replay of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `None` for the order itself, else the sub-order that moved.
    #[serde(default)]
    pub sub_order_id: Option<SubOrderId>,
    pub from: Status,
    pub to: Status,
    pub reason: String,
    pub actor: String,
}

/// Why money is about to go back to the buyer, and from whose books it comes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundIntent {
    pub amount: Money,
    /// Taken back from each sub-order: (sub-order, from the vendor's pending share, from
    /// the platform's commission).
    pub takes: Vec<(SubOrderId, i64, i64)>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: Status,
    pub sub_orders: Vec<SubOrder>,
    pub subtotal: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
    pub address: Address,
    pub payment_method: Method,
    #[serde(default)]
    pub payment_id: Option<PaymentId>,
    /// Captured so far (minor units); money in the vendors' and platform's books.
    #[serde(default)]
    pub paid: i64,
    #[serde(default)]
    pub refunded: i64,
    /// Cash on delivery: the order proceeds unpaid until cash is marked received.
    #[serde(default)]
    pub deferred: bool,
    #[serde(default)]
    pub pending_refund: Option<RefundIntent>,
    /// Refunds waiting for `pending_refund` to go through, oldest first.
    #[serde(default)]
    pub queued_refunds: Vec<RefundIntent>,
    /// The tax rate frozen at checkout (`None` in records from before it was kept).
    #[serde(default)]
    pub tax_rate_bp: Option<u32>,
    /// A guest checkout: the email the guest gave (`user_id` is then the guest identity
    /// derived from it, see `guest::guest_user_id`).
    #[serde(default)]
    pub guest_email: Option<String>,
    /// SHA-256 (hex) of the guest's order access token; the token itself is never stored.
    #[serde(default)]
    pub access_hash: Option<String>,
    pub history: Vec<HistoryEntry>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub payment_due_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

impl Order {
    /// Moves the order itself along the table, recording and announcing it.
    pub fn move_order(
        &mut self,
        tx: &mut Tx<'_>,
        to: Status,
        reason: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        state::check(Level::Order, self.status, to)?;
        let from = self.status;
        self.status = to;
        self.record(tx, None, from, to, reason, actor, now);
        Ok(())
    }

    /// Moves one sub-order along the table, recording and announcing it.
    pub fn move_sub(
        &mut self,
        tx: &mut Tx<'_>,
        index: usize,
        to: Status,
        reason: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let sub = self
            .sub_orders
            .get_mut(index)
            .ok_or_else(|| Error::internal("sub-order index out of range"))?;
        state::check(Level::SubOrder, sub.status, to)?;
        let from = sub.status;
        sub.status = to;
        let id = sub.id;
        self.record(tx, Some(id), from, to, reason, actor, now);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        tx: &mut Tx<'_>,
        sub: Option<SubOrderId>,
        from: Status,
        to: Status,
        reason: &str,
        actor: &str,
        now: OffsetDateTime,
    ) {
        self.updated_at = now;
        self.history.push(HistoryEntry {
            at: now,
            sub_order_id: sub,
            from,
            to,
            reason: reason.to_string(),
            actor: actor.to_string(),
        });
        let mut ev = Envelope::new(
            Event::OrderStatusChanged {
                order_id: self.id.to_string(),
                previous_status: from.as_str().into(),
                new_status: to.as_str().into(),
                timestamp: now,
            },
            now,
        )
        .with_actor(actor.to_string());
        // The event's fields are the design's; a sub-order's move says which one here.
        if let Some(s) = sub {
            ev = ev.with_correlation(format!("sub_order:{s}"));
        }
        tx.emit(ev);
    }

    pub fn sub_index(&self, id: SubOrderId) -> Option<usize> {
        self.sub_orders.iter().position(|s| s.id == id)
    }
}

/// The states an order and its sub-orders reach by replaying `history` from checkout.
/// Event sourcing's check: this must equal what is stored.
pub fn replay(sub_ids: &[SubOrderId], history: &[HistoryEntry]) -> Result<(Status, Vec<Status>)> {
    let mut order = Status::PendingPayment;
    let mut subs = vec![Status::PendingPayment; sub_ids.len()];
    for h in history {
        let (level, cur) = match h.sub_order_id {
            None => (Level::Order, &mut order),
            Some(id) => {
                let i = sub_ids
                    .iter()
                    .position(|s| *s == id)
                    .ok_or_else(|| Error::internal("history names an unknown sub-order"))?;
                (Level::SubOrder, &mut subs[i])
            }
        };
        if *cur != h.from {
            return Err(Error::internal("history does not chain"));
        }
        state::check(level, h.from, h.to)?;
        *cur = h.to;
    }
    Ok((order, subs))
}

/// What a durable timer does when it falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Cancel the order if it is still unpaid.
    PaymentTimeout,
    /// Complete the order if every part is delivered and the return window has passed.
    Complete,
    /// Send a pending refund to the payment service (retried until it goes through).
    Refund,
}

impl TimerKind {
    pub fn code(&self) -> u8 {
        match self {
            TimerKind::PaymentTimeout => 1,
            TimerKind::Complete => 2,
            TimerKind::Refund => 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timer {
    pub order_id: OrderId,
    pub kind: TimerKind,
    pub due_at: i64,
}
