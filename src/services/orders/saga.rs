//! The checkout saga: the order service's answer to payments (amount due, and payment
//! results applied inside the payment's own transaction), the durable timers (payment
//! timeout, completion, refund retries) and the worker that fires them. Every step checks
//! the order's state first, so a result or timer delivered twice changes nothing.

use super::model::{Order, OrderId, RefundIntent, ReturnStatus, Timer, TimerKind};
use super::state::Status;
use super::store;
use crate::app::AppState;
use crate::auth::UserId;
use crate::error::{Error, Result};
use crate::log::event::{Envelope, Event};
use crate::money::Money;
use crate::services::payments::ledger::{self, Account, JournalEntry};
use crate::services::payments::model::{AmountDue, PaymentOutcome};
use crate::services::payments::{OrderPayments, RefundInput};
use crate::store::Tx;
use redb::WriteTransaction;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

const ACTOR: &str = "system:orders";

/// The order service as the payment service sees it.
pub struct Orders {
    clock: crate::clock::Clock,
}

/// Registers the order service with payments (once; later calls do nothing).
pub fn ensure_registered(state: &AppState) {
    if state.payments.orders().is_none() {
        let _ = state.payments.register_orders(Arc::new(Orders {
            clock: state.clock.clone(),
        }));
    }
}

impl OrderPayments for Orders {
    fn amount_due(
        &self,
        tx: &WriteTransaction,
        order_id: Uuid,
        payer: UserId,
    ) -> Result<AmountDue> {
        let o = store::order_in(tx, OrderId(order_id))?
            .filter(|o| o.user_id == payer)
            .ok_or_else(|| Error::not_found("order"))?;
        if o.status != Status::PendingPayment {
            return Err(Error::conflict(
                "not_payable",
                format!("the order is {}", o.status.as_str()),
            ));
        }
        Ok(due_of(&o))
    }

    fn on_payment_result(
        &self,
        tx: &mut Tx<'_>,
        order_id: Uuid,
        outcome: &PaymentOutcome,
    ) -> Result<()> {
        let now = self.clock.now();
        let Some(mut o) = store::order_in(tx, OrderId(order_id))? else {
            return Err(Error::not_found("order"));
        };
        match outcome {
            PaymentOutcome::Succeeded { payment_id, amount } => {
                o.payment_id = Some(*payment_id);
                let unpaid = o.status == Status::PendingPayment || (o.deferred && o.paid == 0);
                if unpaid && *amount == o.total {
                    share_out(tx, &mut o, now)?;
                    o.paid = amount.amount;
                    if o.status == Status::PendingPayment {
                        mark_paid(tx, &mut o, "payment succeeded", now)?;
                    }
                } else {
                    // Money for an order that no longer wants it (cancelled or timed out
                    // while the payer confirmed): it sits in escrow and goes straight back.
                    o.paid += amount.amount;
                    plan_refund(
                        tx,
                        &mut o,
                        RefundIntent {
                            amount: *amount,
                            takes: Vec::new(),
                            reason: "payment arrived after the order closed".into(),
                        },
                        now,
                    )?;
                }
            }
            PaymentOutcome::Deferred { payment_id } => {
                o.payment_id = Some(*payment_id);
                if o.status == Status::PendingPayment {
                    o.deferred = true;
                    mark_paid(tx, &mut o, "cash on delivery accepted", now)?;
                }
            }
            PaymentOutcome::Failed { payment_id, reason } => {
                o.payment_id = Some(*payment_id);
                if o.status == Status::PendingPayment {
                    let why = format!("payment failed: {reason}");
                    o.move_order(tx, Status::PaymentFailed, &why, ACTOR, now)?;
                    for i in 0..o.sub_orders.len() {
                        o.move_sub(tx, i, Status::PaymentFailed, &why, ACTOR, now)?;
                    }
                    super::release_all(tx, &o, ACTOR, now)?;
                    clear_payment_timeout(tx, &o)?;
                }
            }
            PaymentOutcome::Refunded { amount, .. } => {
                let intent = o
                    .pending_refund
                    .take()
                    .filter(|i| i.amount == *amount)
                    .ok_or_else(|| {
                        Error::conflict(
                            "refund_not_expected",
                            "refunds of an order's payment go through the order (cancel or return)",
                        )
                    })?;
                take_back(tx, &mut o, &intent, now)?;
            }
        }
        store::put_order(tx, &o, false)
    }
}

fn mark_paid(tx: &mut Tx<'_>, o: &mut Order, why: &str, now: OffsetDateTime) -> Result<()> {
    o.move_order(tx, Status::Paid, why, ACTOR, now)?;
    for i in 0..o.sub_orders.len() {
        o.move_sub(tx, i, Status::Paid, why, ACTOR, now)?;
    }
    clear_payment_timeout(tx, o)
}

fn clear_payment_timeout(tx: &WriteTransaction, o: &Order) -> Result<()> {
    store::clear_timer(
        tx,
        &Timer {
            order_id: o.id,
            kind: TimerKind::PaymentTimeout,
            due_at: o.payment_due_at.unix_timestamp(),
        },
    )
}

/// Splits what was paid out of escrow: each vendor's share to its pending account, the
/// commission (frozen at checkout) to the platform.
/// What an order owes its payment: its total, and each vendor's part of it.
pub(super) fn due_of(o: &Order) -> AmountDue {
    AmountDue {
        amount: o.total,
        vendor_shares: o
            .sub_orders
            .iter()
            .map(|s| (s.vendor_id, s.total))
            .collect(),
    }
}

fn share_out(tx: &WriteTransaction, o: &mut Order, now: OffsetDateTime) -> Result<()> {
    let cur = o.total.currency;
    let mut lines = vec![(
        Account::OrderEscrow(o.id.0),
        Money::new(-o.total.amount, cur),
    )];
    let mut commission = 0i64;
    for s in &mut o.sub_orders {
        if s.vendor_share.amount != 0 {
            lines.push((Account::VendorPending(s.vendor_id), s.vendor_share));
        }
        commission += s.commission.amount;
        s.pending_share = s.vendor_share.amount;
        s.booked_commission = s.commission.amount;
    }
    if commission != 0 {
        lines.push((Account::PlatformCommission, Money::new(commission, cur)));
    }
    if o.total.amount != 0 {
        ledger::post(
            tx,
            JournalEntry {
                lines,
                reference: format!("order:{}", o.id),
                memo: "order paid: shares to vendors and commission".into(),
                at: now,
            },
        )?;
    }
    Ok(())
}

/// Records that `intent` must be refunded, with a durable timer that retries it. While
/// another refund of the order is under way it waits in the queue behind it.
pub(crate) fn plan_refund(
    tx: &WriteTransaction,
    o: &mut Order,
    intent: RefundIntent,
    now: OffsetDateTime,
) -> Result<()> {
    if o.pending_refund.is_some() {
        o.queued_refunds.push(intent);
        return Ok(());
    }
    o.pending_refund = Some(intent);
    store::set_timer(
        tx,
        &Timer {
            order_id: o.id,
            kind: TimerKind::Refund,
            due_at: now.unix_timestamp(),
        },
    )
}

/// The money went back to the buyer out of `refunds`: take it back from the books it
/// was shared into (escrow first, then vendors' pending shares and commission).
fn take_back(
    tx: &mut Tx<'_>,
    o: &mut Order,
    intent: &RefundIntent,
    now: OffsetDateTime,
) -> Result<()> {
    let cur = o.total.currency;
    let mut lines = vec![(Account::Refunds, intent.amount)];
    let mut from_sub = 0i64;
    for (sid, vendor_part, commission_part) in &intent.takes {
        let Some(i) = o.sub_index(*sid) else {
            return Err(Error::internal("refund names an unknown sub-order"));
        };
        let s = &mut o.sub_orders[i];
        if *vendor_part != 0 {
            lines.push((
                Account::VendorPending(s.vendor_id),
                Money::new(-vendor_part, cur),
            ));
        }
        if *commission_part != 0 {
            lines.push((
                Account::PlatformCommission,
                Money::new(-commission_part, cur),
            ));
        }
        s.pending_share -= vendor_part;
        s.booked_commission -= commission_part;
        from_sub += vendor_part + commission_part;
        if s.status == Status::Returned {
            s.refunded += vendor_part + commission_part;
            if let Some(r) = s
                .returns
                .iter_mut()
                .find(|r| r.status == ReturnStatus::Received)
            {
                r.status = ReturnStatus::Refunded;
                r.refunded_at = Some(now);
                for rl in &r.lines {
                    if let Some(l) = s.lines.iter_mut().find(|l| l.id == rl.line_id) {
                        l.returned += rl.quantity;
                    }
                }
            }
            o.move_sub(tx, i, Status::Refunded, &intent.reason, ACTOR, now)?;
        }
    }
    let escrow = intent.amount.amount - from_sub;
    if escrow != 0 {
        lines.push((Account::OrderEscrow(o.id.0), Money::new(-escrow, cur)));
    }
    ledger::post(
        tx,
        JournalEntry {
            lines,
            reference: format!("order:{}", o.id),
            memo: format!("refund recovered: {}", intent.reason),
            at: now,
        },
    )?;
    // The refund timer, if still set, finds nothing pending and clears itself.
    o.refunded += intent.amount.amount;
    if !o.queued_refunds.is_empty() {
        let next = o.queued_refunds.remove(0);
        plan_refund(tx, o, next, now)?;
    }
    Ok(())
}

/// Sends an order's pending refund (if any) through the payment service. On failure the
/// refund timer stays and the worker retries; the refund and the order's record of it
/// commit together, so a retry after success finds nothing pending.
pub async fn run_refund_if_pending(state: &AppState, id: OrderId) {
    // A refund that goes through may bring the next queued one forward: send those too.
    for _ in 0..8 {
        match run_refund(state, id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(order.id = %id, error = %e, "refund not done yet; the timer retries it");
                return;
            }
        }
    }
}

/// Sends the pending refund, if any; `Ok(true)` when one was sent.
async fn run_refund(state: &AppState, id: OrderId) -> Result<bool> {
    let (intent, payment) = {
        let rtx = state.store.read()?;
        match store::order(&rtx, id)? {
            Some(o) => (o.pending_refund, o.payment_id),
            None => return Ok(false),
        }
    };
    let (Some(intent), Some(payment)) = (intent, payment) else {
        return Ok(false);
    };
    crate::services::payments::refund(
        state,
        &super::system_principal(),
        payment,
        RefundInput {
            amount: Some(intent.amount),
            reason: intent.reason.chars().take(500).collect(),
        },
    )
    .await?;
    Ok(true)
}

/// Fires every timer due by the state's clock. Tests call this after moving the clock;
/// the worker calls it periodically. Returns how many timers fired.
pub async fn run_due(state: &AppState) -> Result<usize> {
    let now = state.clock.now();
    let due = {
        let rtx = state.store.read()?;
        store::due_timers(&rtx, now.unix_timestamp(), 500)?
    };
    let n = due.len();
    for t in due {
        if let Err(e) = fire(state, &t, now).await {
            tracing::warn!(order.id = %t.order_id, error = %e, "order timer failed; retried later");
        }
    }
    Ok(n)
}

async fn fire(state: &AppState, t: &Timer, now: OffsetDateTime) -> Result<()> {
    match t.kind {
        TimerKind::Refund => {
            let retry = run_refund(state, t.order_id).await.map(|_| ());
            let t = t.clone();
            state
                .store
                .write(move |tx| {
                    store::clear_timer(tx, &t)?;
                    let pending = store::order_in(tx, t.order_id)?
                        .is_some_and(|o| o.pending_refund.is_some());
                    if pending {
                        // Not through yet: try again in a minute.
                        store::set_timer(
                            tx,
                            &Timer {
                                due_at: now.unix_timestamp() + 60,
                                ..t
                            },
                        )?;
                    }
                    Ok(())
                })
                .await?;
            retry
        }
        TimerKind::PaymentTimeout => {
            let t = t.clone();
            state
                .store
                .write(move |tx| {
                    store::clear_timer(tx, &t)?;
                    let Some(mut o) = store::order_in(tx, t.order_id)? else {
                        return Ok(());
                    };
                    if o.status != Status::PendingPayment {
                        return Ok(());
                    }
                    let why = "no payment within the payment timeout";
                    o.move_order(tx, Status::Cancelled, why, ACTOR, now)?;
                    for i in 0..o.sub_orders.len() {
                        o.move_sub(tx, i, Status::Cancelled, why, ACTOR, now)?;
                    }
                    super::release_all(tx, &o, ACTOR, now)?;
                    store::put_order(tx, &o, false)
                })
                .await
        }
        TimerKind::Complete => {
            let t = t.clone();
            state
                .store
                .write(move |tx| {
                    store::clear_timer(tx, &t)?;
                    let Some(mut o) = store::order_in(tx, t.order_id)? else {
                        return Ok(());
                    };
                    if o.status != Status::Delivered {
                        return Ok(());
                    }
                    let open = o.pending_refund.is_some()
                        || !o.queued_refunds.is_empty()
                        || o.sub_orders.iter().any(|s| {
                            matches!(s.status, Status::ReturnRequested | Status::Returned)
                                || s.returns.iter().any(|r| r.status.is_open())
                        });
                    if open {
                        // A return is still being handled: look again in an hour.
                        return store::set_timer(
                            tx,
                            &Timer {
                                due_at: now.unix_timestamp() + 3600,
                                ..t
                            },
                        );
                    }
                    complete(tx, &mut o, now)?;
                    store::put_order(tx, &o, false)
                })
                .await
        }
    }
}

/// Every part delivered and the window passed: each vendor's remaining share moves from
/// pending to available, and the order completes.
fn complete(tx: &mut Tx<'_>, o: &mut Order, now: OffsetDateTime) -> Result<()> {
    let cur = o.total.currency;
    for i in 0..o.sub_orders.len() {
        let s = &o.sub_orders[i];
        if s.pending_share > 0 {
            ledger::post(
                tx,
                JournalEntry {
                    lines: vec![
                        (
                            Account::VendorPending(s.vendor_id),
                            Money::new(-s.pending_share, cur),
                        ),
                        (
                            Account::VendorAvailable(s.vendor_id),
                            Money::new(s.pending_share, cur),
                        ),
                    ],
                    reference: format!("order:{}", o.id),
                    memo: "order completed: share available for payout".into(),
                    at: now,
                },
            )?;
        }
        o.sub_orders[i].pending_share = 0;
        o.move_sub(tx, i, Status::Completed, "return window passed", ACTOR, now)?;
    }
    o.move_order(tx, Status::Completed, "return window passed", ACTOR, now)?;
    tx.emit(
        Envelope::new(
            Event::OrderCompleted {
                order_id: o.id.to_string(),
                timestamp: now,
            },
            now,
        )
        .with_actor(ACTOR),
    );
    Ok(())
}

/// The background worker: registers the order service with payments and fires due
/// timers every `orders.timer_interval_secs` (at once on start, so timers that fell due
/// while Souk was down fire right away). Dropping the handle stops it.
pub fn start(state: &AppState) -> TimerWorker {
    ensure_registered(state);
    let s = state.clone();
    let every = std::time::Duration::from_secs(state.config.orders.timer_interval_secs);
    let task = tokio::spawn(async move {
        loop {
            if let Err(e) = run_due(&s).await {
                tracing::warn!(error = %e, "order timers");
            }
            tokio::time::sleep(every).await;
        }
    });
    TimerWorker(task)
}

pub struct TimerWorker(tokio::task::JoinHandle<()>);

impl Drop for TimerWorker {
    fn drop(&mut self) {
        self.0.abort();
    }
}
