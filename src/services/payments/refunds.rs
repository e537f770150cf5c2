//! Refunds: money back to the original method, full or partial, never more in total than
//! was captured. Wallet refunds are immediate; card refunds are reserved in the ledger,
//! sent to the gateway, and undone if it refuses. Admins only.

use super::flows::{Ctx, load_for};
use super::ledger::{self, Account, JournalEntry};
use super::model::{Method, Payment, PaymentId, PaymentOutcome, Purpose, Status};
use super::store;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::log::event::{Envelope, Event};
use crate::money::Money;
use crate::store::Tx;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    #[serde(default)]
    pub amount: Option<Money>,
    pub reason: String,
}

/// Gives money back to the original method (admin only): full or partial, never more
/// than was captured in total. Wallet refunds are immediate; card refunds are reserved
/// in the ledger first, then sent to the gateway, and undone if the gateway refuses.
pub async fn refund(
    state: &AppState,
    admin: &Principal,
    id: PaymentId,
    input: RefundInput,
) -> Result<Payment> {
    admin.require_admin()?;
    let reason = input.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid(
            "reason",
            "invalid_length",
            "must be 1 to 500 characters",
        ));
    }
    let pay = load_for(state, admin, id)?;
    let amount = input
        .amount
        .unwrap_or(Money::new(pay.refundable(), pay.amount.currency));
    if amount.currency != pay.amount.currency {
        return Err(Error::invalid(
            "amount.currency",
            "currency_mismatch",
            format!("the payment is in {}", pay.amount.currency),
        ));
    }
    if amount.amount <= 0 && input.amount.is_some() {
        return Err(Error::invalid(
            "amount.amount",
            "out_of_range",
            "must be above 0",
        ));
    }
    let provider = state.payments.provider(pay.method)?;
    let c = Ctx::of(state, admin.actor());
    let remote = pay.method == Method::Card && pay.provider_ref.is_some();
    let (c2, prov, why) = (c.clone(), provider.clone(), reason.clone());
    let (pay, jid) = state
        .store
        .write(move |tx| {
            let mut pay = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
            if pay.status != Status::Succeeded {
                return Err(Error::conflict(
                    "not_refundable",
                    "only a succeeded payment can be refunded",
                ));
            }
            if amount.amount <= 0 {
                return Err(Error::conflict(
                    "refund_exceeds_captured",
                    "this payment is already fully refunded",
                ));
            }
            if amount.amount > pay.refundable() {
                return Err(Error::conflict(
                    "refund_exceeds_captured",
                    format!(
                        "at most {} can still be refunded",
                        Money::new(pay.refundable(), amount.currency)
                    ),
                ));
            }
            let back_to = prov.account(&pay);
            let from = match pay.purpose {
                Purpose::WalletTopup => Account::Wallet(pay.payer),
                Purpose::Order => Account::Refunds,
            };
            let jid = ledger::post(
                tx,
                JournalEntry {
                    lines: vec![
                        (from, Money::new(-amount.amount, amount.currency)),
                        (back_to, amount),
                    ],
                    reference: format!("payment:{}", pay.id),
                    memo: format!("refund: {why}"),
                    at: c2.now,
                },
            )?;
            pay.refunded += amount.amount;
            pay.journal.push(jid);
            pay.updated_at = c2.now;
            if remote {
                c2.audit(
                    tx,
                    "payment.refund_started",
                    &pay,
                    serde_json::json!({"amount": amount, "reason": why, "journal_id": jid}),
                )?;
            } else {
                refunded(tx, &c2, &pay, amount, &why, jid)?;
            }
            store::put(tx, &pay)?;
            Ok((pay, jid))
        })
        .await?;
    if !remote {
        return Ok(pay);
    }
    let result = match provider.refund(&pay, amount) {
        Some(call) => call.await,
        None => Ok(()),
    };
    state
        .store
        .write(move |tx| {
            let mut pay = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
            match result {
                Ok(()) => {
                    refunded(tx, &c, &pay, amount, &reason, jid)?;
                    Ok(Ok(pay))
                }
                Err(e) => {
                    // Undo the reservation: the gateway did not give the money back.
                    let posted = ledger::entry_in(tx, jid)?
                        .ok_or_else(|| Error::internal("refund entry vanished"))?;
                    let undo = ledger::post(
                        tx,
                        JournalEntry {
                            lines: posted
                                .postings
                                .iter()
                                .map(|l| {
                                    (
                                        l.account.clone(),
                                        Money::new(-l.amount.amount, l.amount.currency),
                                    )
                                })
                                .collect(),
                            reference: format!("payment:{}", pay.id),
                            memo: "refund undone: the gateway refused it".into(),
                            at: c.now,
                        },
                    )?;
                    pay.refunded -= amount.amount;
                    pay.journal.push(undo);
                    c.audit(
                        tx,
                        "payment.refund_failed",
                        &pay,
                        serde_json::json!({"amount": amount, "error": e.to_string()}),
                    )?;
                    store::put(tx, &pay)?;
                    Ok(Err(e))
                }
            }
        })
        .await?
}

fn refunded(
    tx: &mut Tx<'_>,
    c: &Ctx,
    pay: &Payment,
    amount: Money,
    reason: &str,
    jid: ledger::JournalId,
) -> Result<()> {
    tx.emit(
        Envelope::new(
            Event::PaymentRefunded {
                payment_id: pay.id.to_string(),
                order_id: pay.order_id.map(|o| o.to_string()),
                amount: amount.amount,
                reason: reason.to_string(),
                timestamp: c.now,
                currency: amount.currency.to_string(),
            },
            c.now,
        )
        .with_actor(c.actor.clone()),
    );
    c.audit(
        tx,
        "payment.refunded",
        pay,
        serde_json::json!({"amount": amount, "reason": reason, "journal_id": jid}),
    )?;
    let outcome = PaymentOutcome::Refunded {
        payment_id: pay.id,
        amount,
    };
    c.tell_order(tx, pay, outcome)
}
