//! Returns: the buyer asks to return delivered lines within the return window (partial
//! returns allowed, never more than delivered minus already returned); the vendor
//! approves or rejects, then marks the goods received (optionally back on hand), and the
//! refund follows through the payment service, taken back from the vendor's pending share
//! and the commission. Every state move goes through `state`'s table. No HTTP types here.

use super::guest::{self, Buyer};
use super::model::{
    LineId, Order, OrderId, Return, ReturnId, ReturnLine, ReturnStatus, SubOrderId,
};
use super::queries::{OrderView, SubOrderView, sub_view, view};
use super::state::Status;
use super::{pricing, saga, store};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{Error, FieldError, Result};
use crate::money::Money;
use crate::services::catalog::inventory;
use crate::store::Tx;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Most lines one return request may name.
const MAX_RETURN_LINES: usize = 100;

/// `POST /api/v1/orders/{id}/return`: order line ids and, at the same positions, how many
/// units of each; the reason is required (1 to 500 characters).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnInput {
    pub lines: Vec<LineId>,
    pub quantities: Vec<i64>,
    pub reason: String,
}

/// A return as buyers, vendors and admins see it.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnView {
    pub id: ReturnId,
    pub status: ReturnStatus,
    pub lines: Vec<ReturnLine>,
    pub reason: String,
    pub amount: Money,
    pub restock: bool,
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub received_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub refunded_at: Option<OffsetDateTime>,
}

impl ReturnView {
    pub fn of(r: &Return) -> ReturnView {
        ReturnView {
            id: r.id,
            status: r.status,
            lines: r.lines.clone(),
            reason: r.reason.clone(),
            amount: r.amount,
            restock: r.restock,
            note: r.note.clone(),
            requested_at: r.requested_at,
            decided_at: r.decided_at,
            received_at: r.received_at,
            refunded_at: r.refunded_at,
        }
    }
}

fn validate(input: &ReturnInput) -> Result<String> {
    let mut errors = Vec::new();
    if input.lines.is_empty() || input.lines.len() > MAX_RETURN_LINES {
        errors.push(FieldError::new(
            "lines",
            "invalid_length",
            format!("name 1 to {MAX_RETURN_LINES} order lines"),
        ));
    }
    if input.quantities.len() != input.lines.len() {
        errors.push(FieldError::new(
            "quantities",
            "length_mismatch",
            "one quantity per line, in the same order",
        ));
    }
    for (i, q) in input.quantities.iter().enumerate() {
        if *q < 1 {
            errors.push(FieldError::new(
                format!("quantities[{i}]"),
                "out_of_range",
                "must be at least 1",
            ));
        }
    }
    for (i, l) in input.lines.iter().enumerate() {
        if input.lines[..i].contains(l) {
            errors.push(FieldError::new(
                format!("lines[{i}]"),
                "duplicate",
                "this line is named twice",
            ));
        }
    }
    let reason = input.reason.trim().to_string();
    let n = reason.chars().count();
    if n == 0 || n > 500 {
        errors.push(FieldError::new(
            "reason",
            "invalid_length",
            "must be 1 to 500 characters",
        ));
    }
    if errors.is_empty() {
        Ok(reason)
    } else {
        Err(Error::Validation(errors))
    }
}

/// The buyer (or an admin, or a user whose verified email placed it as a guest) asks to
/// return delivered lines. Each vendor's part named gets its own return (its sub-order
/// moves to return_requested), to be approved or rejected by that vendor. Refused with
/// 409 `return_window_closed` after the window (`orders.return_window_days` after that
/// part's delivery), 409 `not_delivered` before delivery, 409 `return_open` while a return
/// of that part is being handled; 422 for unknown lines or more units than delivered
/// minus already returned. Nothing changes when anything is refused.
pub async fn request_return(
    state: &AppState,
    p: &Principal,
    id: OrderId,
    input: ReturnInput,
) -> Result<OrderView> {
    let who = guest::buyer(state, p)?;
    request_as(state, who, p.actor(), id, input).await
}

/// `request_return` for a guest holding the order's access token.
pub async fn request_return_guest(
    state: &AppState,
    id: OrderId,
    access_token: &str,
    input: ReturnInput,
) -> Result<OrderView> {
    let who = Buyer::guest(access_token);
    let actor = guest::guest_actor(state, id, &who)?;
    request_as(state, who, actor, id, input).await
}

async fn request_as(
    state: &AppState,
    who: Buyer,
    actor: String,
    id: OrderId,
    input: ReturnInput,
) -> Result<OrderView> {
    let reason = validate(&input)?;
    let cfg = state.config.orders.clone();
    let window = time::Duration::days(cfg.return_window_days as i64);
    let now = state.clock.now();
    let o = state
        .store
        .write(move |tx| {
            let mut o = store::order_in(tx, id)?
                .filter(|o| who.may(o))
                .ok_or_else(|| Error::not_found("order"))?;
            // Which sub-order and line each named line is; then per part, what it asks.
            let mut asked: BTreeMap<usize, Vec<(usize, i64)>> = BTreeMap::new();
            for (i, (lid, q)) in input.lines.iter().zip(&input.quantities).enumerate() {
                let found = o.sub_orders.iter().enumerate().find_map(|(si, s)| {
                    s.lines.iter().position(|l| l.id == *lid).map(|li| (si, li))
                });
                let Some((si, li)) = found else {
                    return Err(Error::invalid(
                        &format!("lines[{i}]"),
                        "unknown_line",
                        "not a line of this order",
                    ));
                };
                let l = &o.sub_orders[si].lines[li];
                let left = l.quantity - l.returned;
                if *q > left {
                    return Err(Error::invalid(
                        &format!("quantities[{i}]"),
                        "too_many",
                        format!("at most {left} of \"{}\" can still be returned", l.title),
                    ));
                }
                asked.entry(si).or_default().push((li, *q));
            }
            let tax_bp = o.tax_rate_bp.unwrap_or(cfg.default_tax_rate_bp);
            let mut total = 0i64;
            for (si, lines) in &asked {
                let s = &o.sub_orders[*si];
                match s.status {
                    Status::Delivered | Status::Refunded => {}
                    Status::ReturnRequested | Status::Returned => {
                        return Err(Error::conflict(
                            "return_open",
                            "a return of this vendor's parcel is still being handled",
                        ));
                    }
                    Status::PendingPayment | Status::Paid | Status::Processing | Status::Shipped => {
                        return Err(Error::conflict(
                            "not_delivered",
                            "only delivered goods can be returned",
                        ));
                    }
                    Status::Completed => {
                        return Err(Error::conflict(
                            "return_window_closed",
                            "the return window has passed and the order is completed",
                        ));
                    }
                    other => super::state::check(
                        super::state::Level::SubOrder,
                        other,
                        Status::ReturnRequested,
                    )?,
                }
                let delivered = s.delivered_at.unwrap_or(o.updated_at);
                if now > delivered + window {
                    return Err(Error::conflict(
                        "return_window_closed",
                        format!(
                            "returns are accepted for {} days after delivery; this parcel was delivered on {}",
                            cfg.return_window_days,
                            delivered.date()
                        ),
                    ));
                }
                let mut goods = Money::zero(o.total.currency);
                for (li, q) in lines {
                    goods = goods.checked_add(s.lines[*li].unit_price.checked_mul(*q)?)?;
                }
                let amount = pricing::refund_for(&cfg, goods, tax_bp)?;
                total += amount.amount;
                let ret = Return {
                    id: ReturnId::new(),
                    status: ReturnStatus::Requested,
                    lines: lines
                        .iter()
                        .map(|(li, q)| ReturnLine {
                            line_id: s.lines[*li].id,
                            quantity: *q,
                        })
                        .collect(),
                    reason: reason.clone(),
                    amount,
                    resumes: s.status,
                    restock: false,
                    note: None,
                    requested_at: now,
                    decided_at: None,
                    received_at: None,
                    refunded_at: None,
                };
                o.sub_orders[*si].returns.push(ret);
            }
            if total > refundable(&o) {
                return Err(Error::conflict(
                    "not_refundable",
                    "this order has not been paid for (cash on delivery not yet received)",
                ));
            }
            let why = format!("return requested: {reason}");
            for si in asked.keys() {
                o.move_sub(tx, *si, Status::ReturnRequested, &why, &actor, now)?;
            }
            store::put_order(tx, &o, false)?;
            Ok(o)
        })
        .await?;
    Ok(view(&o))
}

/// What can still go back to the buyer: paid, less refunded and refunds under way.
fn refundable(o: &Order) -> i64 {
    let planned: i64 = o
        .pending_refund
        .iter()
        .chain(&o.queued_refunds)
        .map(|r| r.amount.amount)
        .sum();
    o.paid - o.refunded - planned
}

/// Runs one vendor step on return `rid` of sub-order `sub` in one transaction: the caller
/// must be that vendor's (or an admin); anyone else, or an unknown return, gets 404.
async fn vendor_step<F>(
    state: &AppState,
    p: &Principal,
    sub: SubOrderId,
    rid: ReturnId,
    step: F,
) -> Result<Order>
where
    F: FnOnce(&mut Tx<'_>, &mut Order, usize, usize, &str, OffsetDateTime) -> Result<()>
        + Clone
        + Send
        + 'static,
{
    let now = state.clock.now();
    let (caller, actor) = (p.clone(), p.actor());
    state
        .store
        .write(move |tx| {
            let oid = store::order_of_sub_in(tx, sub)?.ok_or_else(|| Error::not_found("order"))?;
            let mut o = store::order_in(tx, oid)?.ok_or_else(|| Error::not_found("order"))?;
            let si = o.sub_index(sub).ok_or_else(|| Error::not_found("order"))?;
            caller
                .require_vendor_of(o.sub_orders[si].vendor_id)
                .map_err(|_| Error::not_found("order"))?;
            let ri = o.sub_orders[si]
                .returns
                .iter()
                .position(|r| r.id == rid)
                .ok_or_else(|| Error::not_found("return"))?;
            step(tx, &mut o, si, ri, &actor, now)?;
            store::put_order(tx, &o, false)?;
            Ok(o)
        })
        .await
}

fn return_conflict(r: &Return, wanted: &str) -> Error {
    Error::conflict(
        "illegal_transition",
        format!(
            "the return is {}; {wanted}",
            serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ),
    )
}

fn answer(o: &Order, sub: SubOrderId) -> Result<SubOrderView> {
    let s = o
        .sub_orders
        .iter()
        .find(|s| s.id == sub)
        .ok_or_else(|| Error::not_found("order"))?;
    Ok(sub_view(o, s))
}

/// The vendor agrees to take the goods back (the buyer then sends them). Only a
/// requested return can be approved (409 otherwise).
pub async fn approve_return(
    state: &AppState,
    p: &Principal,
    sub: SubOrderId,
    rid: ReturnId,
) -> Result<SubOrderView> {
    let o = vendor_step(state, p, sub, rid, |_tx, o, si, ri, _actor, now| {
        let r = &mut o.sub_orders[si].returns[ri];
        if r.status != ReturnStatus::Requested {
            return Err(return_conflict(
                r,
                "only a requested return can be approved",
            ));
        }
        r.status = ReturnStatus::Approved;
        r.decided_at = Some(now);
        o.updated_at = now;
        Ok(())
    })
    .await?;
    answer(&o, sub)
}

/// The vendor refuses the return (requested or approved but not yet received), with an
/// optional note for the buyer; the part goes back to where it was (delivered, or
/// refunded after an earlier return).
pub async fn reject_return(
    state: &AppState,
    p: &Principal,
    sub: SubOrderId,
    rid: ReturnId,
    note: Option<String>,
) -> Result<SubOrderView> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(Error::invalid("note", "too_long", "at most 500 characters"));
    }
    let o = vendor_step(state, p, sub, rid, move |tx, o, si, ri, actor, now| {
        let r = &o.sub_orders[si].returns[ri];
        if !matches!(r.status, ReturnStatus::Requested | ReturnStatus::Approved) {
            return Err(return_conflict(
                r,
                "only an open return not yet received can be rejected",
            ));
        }
        let back = r.resumes;
        let why = match &note {
            Some(n) => format!("return rejected: {n}"),
            None => "return rejected".to_string(),
        };
        o.move_sub(tx, si, back, &why, actor, now)?;
        let r = &mut o.sub_orders[si].returns[ri];
        r.status = ReturnStatus::Rejected;
        r.decided_at = Some(now);
        r.note = note;
        Ok(())
    })
    .await?;
    answer(&o, sub)
}

/// The vendor has the goods back: the part moves to returned, the units go back on hand
/// if `restock` (through the catalog's inventory), and the refund of the return's amount
/// is planned and sent through the payment service at once (retried by the timer worker
/// if it does not go through), taken back from the vendor's pending share and the
/// platform's commission. The part then moves to refunded. Only an approved return can
/// be received (409 otherwise).
pub async fn receive_return(
    state: &AppState,
    p: &Principal,
    sub: SubOrderId,
    rid: ReturnId,
    restock: bool,
) -> Result<SubOrderView> {
    let o = vendor_step(state, p, sub, rid, move |tx, o, si, ri, actor, now| {
        let r = o.sub_orders[si].returns[ri].clone();
        if r.status != ReturnStatus::Approved {
            return Err(return_conflict(
                &r,
                "approve the return before marking it received",
            ));
        }
        if r.amount.amount > refundable(o) {
            return Err(Error::conflict(
                "not_refundable",
                "more than what is left of the payment",
            ));
        }
        o.move_sub(
            tx,
            si,
            Status::Returned,
            &format!("return received: {}", r.reason),
            actor,
            now,
        )?;
        let s = &mut o.sub_orders[si];
        let mut goods = 0i64;
        let mut back = Vec::new();
        for rl in &r.lines {
            let l = s
                .lines
                .iter_mut()
                .find(|l| l.id == rl.line_id)
                .ok_or_else(|| Error::internal("a return names an unknown line"))?;
            goods += l.unit_price.amount * rl.quantity;
            if restock {
                l.restocked += rl.quantity;
                back.push((l.variant_id, rl.quantity));
            }
        }
        if !back.is_empty() {
            inventory::restock(tx, s.reservation_id, &back, actor, now)?;
        }
        // The commission on the returned goods comes back from the platform, the rest
        // from the vendor's pending share; neither below zero.
        let rate_part =
            pricing::commission(Money::new(goods, r.amount.currency), s.commission_rate_bp)?;
        let mut commission = rate_part
            .amount
            .min(s.booked_commission)
            .min(r.amount.amount);
        let mut vendor = r.amount.amount - commission;
        if vendor > s.pending_share {
            vendor = s.pending_share;
            commission = r.amount.amount - vendor;
        }
        if commission > s.booked_commission {
            return Err(Error::conflict(
                "not_refundable",
                "the vendor's share of this order is already paid out",
            ));
        }
        let sid = s.id;
        let ret = &mut s.returns[ri];
        ret.status = ReturnStatus::Received;
        ret.received_at = Some(now);
        ret.restock = restock;
        saga::plan_refund(
            tx,
            o,
            super::model::RefundIntent {
                amount: r.amount,
                takes: vec![(sid, vendor, commission)],
                reason: format!("return {}: {}", r.id, r.reason),
            },
            now,
        )
    })
    .await?;
    saga::run_refund_if_pending(state, o.id).await;
    let rtx = state.store.read()?;
    let o = store::order(&rtx, o.id)?.ok_or_else(|| Error::not_found("order"))?;
    answer(&o, sub)
}
