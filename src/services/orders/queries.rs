//! How orders read: the buyer's and admin's view of an order with its timeline, a
//! vendor's view of its own sub-order (nothing of other vendors'), and the lists. Reads
//! only, through a snapshot; ownership is checked here, never in handlers.

use super::model::{Address, HistoryEntry, Line, Order, OrderId, SubOrder, SubOrderId, Tracking};
use super::state::Status;
use super::store;
use crate::app::AppState;
use crate::auth::{Principal, UserId, VendorId};
use crate::error::{Error, Result};
use crate::money::Money;
use crate::services::payments::model::Method;
use crate::services::{Page, PageQuery};
use serde::Serialize;
use time::OffsetDateTime;

/// An order as its buyer and admins see it, with its timeline.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub id: OrderId,
    /// The buyer; for a guest checkout, the guest identity of `guest_email`.
    pub user_id: UserId,
    /// Set when the order was placed by a guest.
    pub guest_email: Option<String>,
    pub status: Status,
    pub sub_orders: Vec<SubOrderView>,
    pub subtotal: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
    pub paid: Money,
    pub refunded: Money,
    pub shipping_address: Address,
    pub payment_method: Method,
    pub payment_id: Option<crate::services::payments::model::PaymentId>,
    #[serde(with = "time::serde::rfc3339")]
    pub payment_due_at: OffsetDateTime,
    pub timeline: Vec<HistoryEntry>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubOrderView {
    pub id: SubOrderId,
    pub order_id: OrderId,
    pub vendor_id: VendorId,
    pub status: Status,
    /// The order's own state (a vendor needs to know it is paid).
    pub order_status: Status,
    pub lines: Vec<Line>,
    pub subtotal: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
    pub commission_rate_bp: u32,
    pub commission: Money,
    pub vendor_share: Money,
    pub tracking: Option<Tracking>,
    pub shipping_address: Address,
    pub refunded: Money,
    /// Every return asked of this part, oldest first.
    pub returns: Vec<super::returns::ReturnView>,
    pub timeline: Vec<HistoryEntry>,
}

pub(crate) fn sub_view(o: &Order, s: &SubOrder) -> SubOrderView {
    SubOrderView {
        id: s.id,
        order_id: o.id,
        vendor_id: s.vendor_id,
        status: s.status,
        order_status: o.status,
        lines: s.lines.clone(),
        subtotal: s.subtotal,
        shipping: s.shipping,
        tax: s.tax,
        total: s.total,
        commission_rate_bp: s.commission_rate_bp,
        commission: s.commission,
        vendor_share: s.vendor_share,
        tracking: s.tracking.clone(),
        shipping_address: o.address.clone(),
        refunded: Money::new(s.refunded, s.total.currency),
        returns: s
            .returns
            .iter()
            .map(super::returns::ReturnView::of)
            .collect(),
        timeline: o
            .history
            .iter()
            .filter(|h| h.sub_order_id.is_none() || h.sub_order_id == Some(s.id))
            .cloned()
            .collect(),
    }
}

pub fn view(o: &Order) -> OrderView {
    let cur = o.total.currency;
    OrderView {
        id: o.id,
        user_id: o.user_id,
        guest_email: o.guest_email.clone(),
        status: o.status,
        sub_orders: o.sub_orders.iter().map(|s| sub_view(o, s)).collect(),
        subtotal: o.subtotal,
        shipping: o.shipping,
        tax: o.tax,
        total: o.total,
        paid: Money::new(o.paid, cur),
        refunded: Money::new(o.refunded, cur),
        shipping_address: o.address.clone(),
        payment_method: o.payment_method,
        payment_id: o.payment_id,
        payment_due_at: o.payment_due_at,
        timeline: o.history.clone(),
        created_at: o.created_at,
        updated_at: o.updated_at,
    }
}

/// An order its buyer or an admin may see (a user also sees guest orders placed with
/// their verified email); anyone else gets 404. The storefront's order page calls this.
pub fn get(state: &AppState, p: &Principal, id: OrderId) -> Result<OrderView> {
    let who = super::guest::buyer(state, p)?;
    let rtx = state.store.read()?;
    let o = store::order(&rtx, id)?
        .filter(|o| who.may(o))
        .ok_or_else(|| Error::not_found("order"))?;
    Ok(view(&o))
}

/// The caller's orders (an admin's `all` lists everyone's), newest first; guest orders
/// of the caller's verified email are the caller's too.
pub fn list(
    state: &AppState,
    p: &Principal,
    page: &PageQuery,
    status: Option<Status>,
    all: bool,
) -> Result<Page<OrderView>> {
    let limit = page.limit()?;
    let before = page.cursor_uuid()?.map(OrderId);
    let rtx = state.store.read()?;
    let orders: Vec<Order> = if all {
        p.require_admin()?;
        store::all_orders(&rtx, before)?
    } else {
        // The caller's own orders and, with a verified email, the guest orders placed
        // with it, merged newest first (order ids are time-ordered).
        let mut ids = store::user_orders(&rtx, p.user_id, before)?;
        if let Some(claimed) = super::guest::claimed_identity(state, p)? {
            ids.extend(store::user_orders(&rtx, claimed, before)?);
            ids.sort_unstable_by(|a, b| b.cmp(a));
        }
        let mut v = Vec::new();
        for id in ids {
            if let Some(o) = store::order(&rtx, id)? {
                v.push(o);
            }
        }
        v
    };
    let mut items = Vec::new();
    let mut next = None;
    for o in orders {
        if status.is_some_and(|s| s != o.status) {
            continue;
        }
        if items.len() == limit {
            next = items.last().map(|v: &OrderView| v.id.to_string());
            break;
        }
        items.push(view(&o));
    }
    Ok(Page {
        items,
        next_cursor: next,
    })
}

/// A vendor's sub-orders, newest first.
pub fn vendor_list(
    state: &AppState,
    vendor: VendorId,
    page: &PageQuery,
    status: Option<Status>,
) -> Result<Page<SubOrderView>> {
    let limit = page.limit()?;
    let before = page.cursor_uuid()?.map(SubOrderId);
    let rtx = state.store.read()?;
    let mut items = Vec::new();
    let mut next = None;
    for (sid, oid) in store::vendor_sub_orders(&rtx, vendor, before)? {
        let Some(o) = store::order(&rtx, oid)? else {
            continue;
        };
        let Some(s) = o.sub_orders.iter().find(|s| s.id == sid) else {
            continue;
        };
        if status.is_some_and(|st| st != s.status) {
            continue;
        }
        if items.len() == limit {
            next = items.last().map(|v: &SubOrderView| v.id.to_string());
            break;
        }
        items.push(sub_view(&o, s));
    }
    Ok(Page {
        items,
        next_cursor: next,
    })
}

/// One sub-order, for its vendor (or an admin); 404 for anyone else.
pub fn vendor_get(state: &AppState, p: &Principal, id: SubOrderId) -> Result<SubOrderView> {
    let rtx = state.store.read()?;
    let o = store::order_of_sub(&rtx, id)?
        .map(|oid| store::order(&rtx, oid))
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::not_found("order"))?;
    let s = o
        .sub_orders
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::not_found("order"))?;
    p.require_vendor_of(s.vendor_id)
        .map_err(|_| Error::not_found("order"))?;
    Ok(sub_view(&o, s))
}
