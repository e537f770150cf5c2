//! The order service's tables: carts, orders and their indexes, durable timers. Every
//! function takes the caller's transaction; none decides anything.

use super::model::{Cart, Order, OrderId, SubOrderId, Timer, TimerKind};
use crate::auth::{UserId, VendorId, kv};
use crate::error::{Error, Result};
use crate::store::codec;
use crate::store::tables::{
    CART_OWNER_TO_CART, DUE_AT_TO_TIMER, ORDER_ID_TO_ORDER, SUB_ORDER_ID_TO_ORDER_ID,
    USER_ORDER_TO_UNIT, VENDOR_SUB_ORDER_TO_ORDER_ID,
};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};

/// Who a cart belongs to: a signed-in user, or a guest known by an opaque token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartOwner {
    User(UserId),
    Guest(String),
}

impl CartOwner {
    /// The table key; a guest token is stored only as its hash.
    pub fn key(&self) -> Vec<u8> {
        match self {
            CartOwner::User(u) => kv::concat(b"u", &u.to_bytes()),
            CartOwner::Guest(t) => kv::concat(b"g", &Sha256::digest(t.as_bytes())),
        }
    }
}

pub fn cart(rtx: &ReadTransaction, owner: &CartOwner) -> Result<Cart> {
    Ok(kv::read(rtx, CART_OWNER_TO_CART, &owner.key())?.unwrap_or_default())
}

pub fn cart_in(wtx: &WriteTransaction, owner: &CartOwner) -> Result<Option<Cart>> {
    kv::read_in(wtx, CART_OWNER_TO_CART, &owner.key())
}

pub fn put_cart(wtx: &WriteTransaction, owner: &CartOwner, c: &Cart) -> Result<()> {
    if c.lines.is_empty() {
        return kv::delete(wtx, CART_OWNER_TO_CART, &owner.key());
    }
    kv::put(wtx, CART_OWNER_TO_CART, &owner.key(), c)
}

pub fn order(rtx: &ReadTransaction, id: OrderId) -> Result<Option<Order>> {
    kv::read(rtx, ORDER_ID_TO_ORDER, &id.to_bytes())
}

pub fn order_in(wtx: &WriteTransaction, id: OrderId) -> Result<Option<Order>> {
    kv::read_in(wtx, ORDER_ID_TO_ORDER, &id.to_bytes())
}

/// Writes an order; on its first write also its indexes.
pub fn put_order(wtx: &WriteTransaction, o: &Order, new: bool) -> Result<()> {
    if new {
        wtx.open_table(USER_ORDER_TO_UNIT)?.insert(
            kv::concat(&o.user_id.to_bytes(), &o.id.to_bytes()).as_slice(),
            (),
        )?;
        let mut by_vendor = wtx.open_table(VENDOR_SUB_ORDER_TO_ORDER_ID)?;
        let mut subs = wtx.open_table(SUB_ORDER_ID_TO_ORDER_ID)?;
        for s in &o.sub_orders {
            by_vendor.insert(
                kv::concat(&s.vendor_id.to_bytes(), &s.id.to_bytes()).as_slice(),
                o.id.to_bytes().as_slice(),
            )?;
            subs.insert(s.id.to_bytes().as_slice(), o.id.to_bytes().as_slice())?;
        }
    }
    kv::put(wtx, ORDER_ID_TO_ORDER, &o.id.to_bytes(), o)
}

fn id16(b: &[u8]) -> Result<[u8; 16]> {
    b.try_into()
        .map_err(|_| Error::Storage("corrupt order index key".into()))
}

pub fn order_of_sub(rtx: &ReadTransaction, sub: SubOrderId) -> Result<Option<OrderId>> {
    let Some(t) = kv::open_ro(rtx, SUB_ORDER_ID_TO_ORDER_ID)? else {
        return Ok(None);
    };
    match t.get(sub.to_bytes().as_slice())? {
        Some(v) => Ok(Some(OrderId::from_bytes(id16(v.value())?))),
        None => Ok(None),
    }
}

pub fn order_of_sub_in(wtx: &WriteTransaction, sub: SubOrderId) -> Result<Option<OrderId>> {
    let t = wtx.open_table(SUB_ORDER_ID_TO_ORDER_ID)?;
    match t.get(sub.to_bytes().as_slice())? {
        Some(v) => Ok(Some(OrderId::from_bytes(id16(v.value())?))),
        None => Ok(None),
    }
}

/// A user's order ids, newest first, strictly before `before`.
pub fn user_orders(
    rtx: &ReadTransaction,
    user: UserId,
    before: Option<OrderId>,
) -> Result<Vec<OrderId>> {
    let Some(t) = kv::open_ro(rtx, USER_ORDER_TO_UNIT)? else {
        return Ok(Vec::new());
    };
    let lo = kv::concat(&user.to_bytes(), &[0u8; 16]);
    let hi = match before {
        Some(b) => kv::concat(&user.to_bytes(), &b.to_bytes()),
        None => kv::concat(&user.to_bytes(), &[0xffu8; 16]),
    };
    let mut out = Vec::new();
    for row in t.range(lo.as_slice()..hi.as_slice())?.rev() {
        let (k, _) = row?;
        out.push(OrderId::from_bytes(id16(&k.value()[16..])?));
    }
    Ok(out)
}

/// A vendor's (sub-order, order) ids, newest first, strictly before `before`.
pub fn vendor_sub_orders(
    rtx: &ReadTransaction,
    vendor: VendorId,
    before: Option<SubOrderId>,
) -> Result<Vec<(SubOrderId, OrderId)>> {
    let Some(t) = kv::open_ro(rtx, VENDOR_SUB_ORDER_TO_ORDER_ID)? else {
        return Ok(Vec::new());
    };
    let lo = kv::concat(&vendor.to_bytes(), &[0u8; 16]);
    let hi = match before {
        Some(b) => kv::concat(&vendor.to_bytes(), &b.to_bytes()),
        None => kv::concat(&vendor.to_bytes(), &[0xffu8; 16]),
    };
    let mut out = Vec::new();
    for row in t.range(lo.as_slice()..hi.as_slice())?.rev() {
        let (k, v) = row?;
        out.push((
            SubOrderId::from_bytes(id16(&k.value()[16..])?),
            OrderId::from_bytes(id16(v.value())?),
        ));
    }
    Ok(out)
}

/// Every order id, newest first, strictly before `before` (admin lists).
pub fn all_orders(rtx: &ReadTransaction, before: Option<OrderId>) -> Result<Vec<Order>> {
    let Some(t) = kv::open_ro(rtx, ORDER_ID_TO_ORDER)? else {
        return Ok(Vec::new());
    };
    let hi = before.map(|b| b.to_bytes()).unwrap_or([0xff; 16]);
    let mut out = Vec::new();
    for row in t.range(..hi.as_slice())?.rev() {
        let (_, v) = row?;
        out.push(codec::decode(v.value())?);
        if out.len() > 2000 {
            break;
        }
    }
    Ok(out)
}

fn timer_key(due_at: i64, order: OrderId, kind: TimerKind) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    // Offset so that times before 1970 would still sort; big-endian for range scans.
    k.extend_from_slice(&((due_at as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&order.to_bytes());
    k.push(kind.code());
    k
}

pub fn set_timer(wtx: &WriteTransaction, t: &Timer) -> Result<()> {
    wtx.open_table(DUE_AT_TO_TIMER)?.insert(
        timer_key(t.due_at, t.order_id, t.kind).as_slice(),
        codec::encode(t)?.as_slice(),
    )?;
    Ok(())
}

pub fn clear_timer(wtx: &WriteTransaction, t: &Timer) -> Result<()> {
    wtx.open_table(DUE_AT_TO_TIMER)?
        .remove(timer_key(t.due_at, t.order_id, t.kind).as_slice())?;
    Ok(())
}

/// Timers due at or before `now`, oldest first, at most `limit`.
pub fn due_timers(rtx: &ReadTransaction, now: i64, limit: usize) -> Result<Vec<Timer>> {
    let Some(t) = kv::open_ro(rtx, DUE_AT_TO_TIMER)? else {
        return Ok(Vec::new());
    };
    let hi = timer_key(now, OrderId::from_bytes([0xff; 16]), TimerKind::Refund);
    let mut out = Vec::new();
    for row in t.range(..=hi.as_slice())? {
        let (_, v) = row?;
        out.push(codec::decode(v.value())?);
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}

/// Every timer still set (tests and `souk check`).
pub fn all_timers(rtx: &ReadTransaction) -> Result<Vec<Timer>> {
    due_timers(rtx, i64::MAX / 2, usize::MAX)
}
