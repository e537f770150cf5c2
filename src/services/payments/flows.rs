//! The payer's payment commands, initiate and confirm, and the steps every completion
//! shares (`apply`, `fail`). Each records its change, its ledger entry, its events and its
//! audit entry in one transaction; gateway calls happen between transactions, never
//! inside one.

use super::audit;
use super::fraud::{self, Mark};
use super::gateway::CardInput;
use super::intake::{prepare_card, validate_initiate};
use super::ledger::{self, Account, JournalEntry};
use super::methods;
use super::model::{
    AmountDue, FraudAction, FraudVerdict, Method, NextAction, Payment, PaymentId, PaymentMethodId,
    PaymentOutcome, Purpose, Status,
};
use super::providers::{PaymentProvider, Step};
use super::{PaymentsState, store};
use crate::app::AppState;
use crate::auth::Principal;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::event::{Envelope, Event};
use crate::money::Money;
use crate::store::Tx;
use redb::WriteTransaction;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// A payment request, already parsed.
#[derive(Debug, Clone)]
pub struct InitiateInput {
    pub purpose: Purpose,
    pub order_id: Option<Uuid>,
    pub amount: Option<Money>,
    pub method: Method,
    pub payment_method_id: Option<PaymentMethodId>,
    pub card: Option<CardInput>,
    pub save_method: bool,
}

/// What the closures of one command share.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) payments: Arc<PaymentsState>,
    pub(super) config: Arc<Config>,
    pub(super) actor: String,
    pub(super) now: OffsetDateTime,
}

impl Ctx {
    pub(super) fn of(state: &AppState, actor: String) -> Ctx {
        Ctx {
            payments: state.payments.clone(),
            config: state.config.clone(),
            actor,
            now: state.clock.now(),
        }
    }

    pub(super) fn audit(
        &self,
        tx: &Tx<'_>,
        action: &str,
        p: &Payment,
        details: serde_json::Value,
    ) -> Result<()> {
        audit::append(
            tx,
            &self.payments.audit_key,
            self.now,
            action,
            &self.actor,
            Some(p.id.to_string()),
            details,
        )?;
        Ok(())
    }

    pub(super) fn tell_order(
        &self,
        tx: &mut Tx<'_>,
        p: &Payment,
        outcome: PaymentOutcome,
    ) -> Result<()> {
        if let (Some(order), Some(orders)) = (p.order_id, self.payments.orders()) {
            orders.on_payment_result(tx, order, &outcome)?;
        }
        Ok(())
    }

    /// Counts a payment's outcome against its fraud subjects; with the rules off
    /// (`payments.fraud.enabled = false`) nothing is scored or counted.
    pub(super) fn count(&self, tx: &WriteTransaction, p: &Payment, mark: &Mark) -> Result<()> {
        if !self.config.payments.fraud.enabled {
            return Ok(());
        }
        let subjects = fraud::subjects(
            &p.payer.to_string(),
            p.client_ip.as_deref(),
            p.card_key.as_deref(),
        );
        fraud::record(tx, &subjects, self.now.unix_timestamp(), mark)
    }
}

/// Starts a payment: validates, scores it for fraud, records it, and lets its provider
/// take it. Wallet payments are decided entirely inside one transaction.
pub async fn initiate(
    state: &AppState,
    p: &Principal,
    client_ip: Option<String>,
    input: InitiateInput,
) -> Result<Payment> {
    validate_initiate(&input, &state.config)?;
    let provider = state.payments.provider(input.method)?;
    if let (Method::Card, Some(card)) = (input.method, &state.payments.card) {
        // Refuse before recording anything while the gateway is known to be down.
        card.breaker.check().map_err(|open| Error::Unavailable {
            message: "the card gateway is unavailable; try again later".into(),
            retry_after_secs: open.retry_after_secs,
        })?;
    }
    let ctx = Ctx::of(state, p.actor());
    let card = match input.method {
        Method::Card => Some(prepare_card(state, p, &input, ctx.now)?),
        _ => None,
    };
    let payer = p.user_id;
    let c = ctx.clone();
    let prov = provider.clone();
    let (payment, token) = state
        .store
        .write(move |tx| record(tx, &c, payer, client_ip, input, None, card, &prov))
        .await?;
    match (payment.status, token) {
        (Status::Processing, Some(token)) => {
            remote_start(state, &ctx, payment, provider, token).await
        }
        _ => Ok(payment),
    }
}

/// A payment that needs no outside call (the wallet), prepared outside a transaction so
/// that the caller can record it in its own: checkout places the order and pays it from
/// the wallet in one transaction, so one commit (one fsync) answers the buyer.
#[derive(Clone)]
pub struct LocalPayment {
    ctx: Ctx,
    provider: Arc<dyn PaymentProvider>,
    payer: crate::auth::UserId,
    client_ip: Option<String>,
    input: InitiateInput,
}

impl LocalPayment {
    /// `Ok(None)` when the method needs a step outside the transaction (cards, the
    /// hosted page, cash on delivery): call [`initiate`] for those.
    pub fn prepare(
        state: &AppState,
        p: &Principal,
        client_ip: Option<String>,
        input: InitiateInput,
    ) -> Result<Option<LocalPayment>> {
        if input.method != Method::Wallet {
            return Ok(None);
        }
        validate_initiate(&input, &state.config)?;
        Ok(Some(LocalPayment {
            ctx: Ctx::of(state, p.actor()),
            provider: state.payments.provider(input.method)?,
            payer: p.user_id,
            client_ip,
            input,
        }))
    }

    /// Records the payment in the caller's transaction, exactly as
    /// [`initiate`] would in its own: fraud scoring, the capture and its ledger entry,
    /// events, audit, and the order told of the outcome. `due` is what the order the
    /// caller has just placed in this transaction owes, so it is not read back. A failed
    /// payment (insufficient funds, fraud) is `Ok` with status `failed`; an `Err` means
    /// abandon the transaction.
    pub fn record_in(self, tx: &mut Tx<'_>, due: AmountDue) -> Result<Payment> {
        let (pay, _) = record(
            tx,
            &self.ctx,
            self.payer,
            self.client_ip,
            self.input,
            Some(due),
            None,
            &self.provider,
        )?;
        Ok(pay)
    }
}

/// Scores a new payment against its subjects' recent activity, and counts the attempt.
fn score_and_count(
    tx: &WriteTransaction,
    c: &Ctx,
    payer: crate::auth::UserId,
    client_ip: Option<&str>,
    card_key: Option<&str>,
    amount: i64,
) -> Result<FraudVerdict> {
    let now_u = c.now.unix_timestamp();
    let subjects = fraud::subjects(&payer.to_string(), client_ip, card_key);
    let created = crate::services::users::store::get_in(tx, payer)?
        .map(|u| u.created_at)
        .unwrap_or(c.now);
    let mut acts = Vec::new();
    for s in &subjects {
        acts.push(fraud::load(tx, s, now_u)?);
    }
    let mut acts = acts.into_iter();
    let verdict = fraud::score(
        &c.config.payments.fraud,
        &fraud::Input {
            now: now_u,
            amount,
            user: acts.next().unwrap_or_default(),
            address: client_ip.and_then(|_| acts.next()),
            card: card_key.and_then(|_| acts.next()),
            card_key: card_key.map(str::to_string),
            account_age_secs: (c.now - created).whole_seconds(),
        },
    );
    fraud::record(
        tx,
        &subjects,
        now_u,
        &Mark::Attempt {
            amount,
            card_key: card_key.map(str::to_string),
        },
    )?;
    Ok(verdict)
}

/// The transaction of [`initiate`]: scores, records and (for local providers) takes the
/// payment; answers it with the card token for a remote start.
#[allow(clippy::too_many_arguments)]
fn record(
    tx: &mut Tx<'_>,
    c: &Ctx,
    payer: crate::auth::UserId,
    client_ip: Option<String>,
    input: InitiateInput,
    due: Option<AmountDue>,
    card: Option<super::intake::CardPrep>,
    prov: &Arc<dyn PaymentProvider>,
) -> Result<(Payment, Option<String>)> {
    let (amount, vendor_shares) = match input.purpose {
        Purpose::WalletTopup => (
            input
                .amount
                .ok_or_else(|| Error::invalid("amount", "required", "how much to add"))?,
            Vec::new(),
        ),
        Purpose::Order => {
            let order = input.order_id.ok_or_else(|| Error::not_found("order"))?;
            let orders = c
                .payments
                .orders()
                .ok_or_else(|| Error::not_found("order"))?;
            let due = match due {
                Some(due) => due,
                None => orders.amount_due(tx, order, payer)?,
            };
            if due.amount.amount <= 0 {
                return Err(Error::conflict(
                    "nothing_due",
                    "nothing is due on this order",
                ));
            }
            (due.amount, due.vendor_shares)
        }
    };
    let card_key = card.as_ref().map(|k| k.card_key.clone());
    let verdict = if c.config.payments.fraud.enabled {
        Some(score_and_count(
            tx,
            c,
            payer,
            client_ip.as_deref(),
            card_key.as_deref(),
            amount.amount,
        )?)
    } else {
        None
    };
    let mut pay = Payment {
        id: PaymentId::new(),
        payer,
        purpose: input.purpose,
        order_id: input.order_id,
        amount,
        method: input.method,
        status: Status::Processing,
        next_action: None,
        refunded: 0,
        failure_reason: None,
        card: card.as_ref().map(|k| k.summary.clone()),
        payment_method_id: card.as_ref().and_then(|k| k.method_id),
        provider_ref: None,
        sealed_token: None,
        card_key,
        fraud: verdict.clone(),
        vendor_shares,
        test_mode: prov.test_mode(),
        client_ip,
        journal: Vec::new(),
        created_at: c.now,
        updated_at: c.now,
    };
    if let Some(m) = card.as_ref().and_then(|k| k.new_method.as_ref()) {
        methods::put(tx, m)?;
        audit::append(
            tx,
            &c.payments.audit_key,
            c.now,
            "method.added",
            &c.actor,
            None,
            serde_json::json!({"payment_method_id": m.id, "brand": m.card.brand, "last4": m.card.last4}),
        )?;
    }
    tx.emit(
        Envelope::new(
            Event::PaymentInitiated {
                payment_id: pay.id.to_string(),
                order_id: pay.order_id.map(|o| o.to_string()),
                amount: amount.amount,
                method: pay.method.as_str().into(),
                timestamp: c.now,
                currency: amount.currency.to_string(),
            },
            c.now,
        )
        .with_actor(c.actor.clone()),
    );
    c.audit(
        tx,
        "payment.initiated",
        &pay,
        serde_json::json!({
            "amount": amount, "method": pay.method, "purpose": pay.purpose,
            "order_id": pay.order_id, "fraud": verdict,
        }),
    )?;
    let token = card.map(|k| k.token);
    match verdict.as_ref().map_or(FraudAction::Allow, |v| v.action) {
        FraudAction::Block => fail(tx, c, &mut pay, "fraud_suspected", false)?,
        FraudAction::Review => {
            pay.status = Status::InReview;
            pay.next_action = Some(NextAction::AwaitReview);
            if let Some(t) = &token {
                pay.sealed_token = Some(c.payments.field_keys.seal(
                    &pay.id.to_bytes(),
                    "token",
                    t.as_bytes(),
                )?);
            }
            c.audit(
                tx,
                "payment.held_for_review",
                &pay,
                serde_json::json!({"score": verdict.as_ref().map(|v| v.score)}),
            )?;
        }
        FraudAction::Allow => {
            if let Some(step) = prov.start_local(&pay) {
                apply(tx, c, &mut pay, step, prov.as_ref())?;
            }
        }
    }
    store::put(tx, &pay)?;
    Ok((pay, token))
}

/// Asks the gateway to take a recorded payment, then records what it said.
pub(super) async fn remote_start(
    state: &AppState,
    ctx: &Ctx,
    payment: Payment,
    provider: Arc<dyn PaymentProvider>,
    token: String,
) -> Result<Payment> {
    let step = provider.start(&payment, &token).await;
    let id = payment.id;
    let c = ctx.clone();
    match step {
        Ok(step) => {
            state
                .store
                .write(move |tx| {
                    let mut pay =
                        store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
                    if pay.status != Status::Processing {
                        return Ok(pay);
                    }
                    apply(tx, &c, &mut pay, step, provider.as_ref())?;
                    store::put(tx, &pay)?;
                    Ok(pay)
                })
                .await
        }
        Err(e) => {
            let reason = if matches!(e, Error::Unavailable { .. }) {
                "gateway_unavailable"
            } else {
                "gateway_error"
            };
            state
                .store
                .write(move |tx| {
                    let mut pay =
                        store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
                    if pay.status == Status::Processing {
                        fail(tx, &c, &mut pay, reason, false)?;
                        store::put(tx, &pay)?;
                    }
                    Ok(())
                })
                .await?;
            Err(e)
        }
    }
}

/// Records a provider's step on a payment, in the caller's transaction.
pub(super) fn apply(
    tx: &mut Tx<'_>,
    c: &Ctx,
    pay: &mut Payment,
    step: Step,
    provider: &dyn PaymentProvider,
) -> Result<()> {
    pay.updated_at = c.now;
    match step {
        Step::Captured { provider_ref } => {
            let source = provider.account(pay);
            let dest = match (pay.purpose, pay.order_id) {
                (Purpose::Order, Some(o)) => Account::OrderEscrow(o),
                _ => Account::Wallet(pay.payer),
            };
            if matches!(source, Account::Wallet(_)) {
                let bal = ledger::balance_in(tx, &source, pay.amount.currency)?;
                if bal.amount < pay.amount.amount {
                    return fail(tx, c, pay, "insufficient_funds", true);
                }
            }
            let negative = Money::new(-pay.amount.amount, pay.amount.currency);
            let jid = ledger::post(
                tx,
                JournalEntry {
                    lines: vec![(source, negative), (dest, pay.amount)],
                    reference: format!("payment:{}", pay.id),
                    memo: match pay.purpose {
                        Purpose::WalletTopup => format!("wallet top-up by {}", pay.method.as_str()),
                        Purpose::Order => format!("order payment by {}", pay.method.as_str()),
                    },
                    at: c.now,
                },
            )?;
            pay.journal.push(jid);
            pay.status = Status::Succeeded;
            pay.next_action = None;
            pay.sealed_token = None;
            if provider_ref.is_some() {
                pay.provider_ref = provider_ref;
            }
            tx.emit(
                Envelope::new(
                    Event::PaymentCompleted {
                        payment_id: pay.id.to_string(),
                        order_id: pay.order_id.map(|o| o.to_string()),
                        status: "succeeded".into(),
                        timestamp: c.now,
                    },
                    c.now,
                )
                .with_actor(c.actor.clone()),
            );
            c.audit(
                tx,
                "payment.captured",
                pay,
                serde_json::json!({"journal_id": jid, "amount": pay.amount}),
            )?;
            c.count(
                tx,
                pay,
                &Mark::Succeeded {
                    amount: pay.amount.amount,
                },
            )?;
            let outcome = PaymentOutcome::Succeeded {
                payment_id: pay.id,
                amount: pay.amount,
            };
            c.tell_order(tx, pay, outcome)
        }
        Step::Declined { reason } => fail(tx, c, pay, &reason, true),
        Step::Waiting {
            status,
            action,
            provider_ref,
        } => {
            pay.status = status;
            pay.next_action = Some(action);
            if provider_ref.is_some() {
                pay.provider_ref = provider_ref;
            }
            c.audit(
                tx,
                "payment.pending",
                pay,
                serde_json::json!({"status": status.as_str()}),
            )?;
            if status == Status::AwaitingCash {
                let outcome = PaymentOutcome::Deferred { payment_id: pay.id };
                c.tell_order(tx, pay, outcome)?;
            }
            Ok(())
        }
    }
}

pub(super) fn fail(
    tx: &mut Tx<'_>,
    c: &Ctx,
    pay: &mut Payment,
    reason: &str,
    declined: bool,
) -> Result<()> {
    pay.status = Status::Failed;
    pay.failure_reason = Some(reason.to_string());
    pay.next_action = None;
    pay.sealed_token = None;
    pay.updated_at = c.now;
    tx.emit(
        Envelope::new(
            Event::PaymentFailed {
                payment_id: pay.id.to_string(),
                order_id: pay.order_id.map(|o| o.to_string()),
                reason: reason.to_string(),
                timestamp: c.now,
            },
            c.now,
        )
        .with_actor(c.actor.clone()),
    );
    c.audit(
        tx,
        "payment.failed",
        pay,
        serde_json::json!({"reason": reason}),
    )?;
    if declined {
        c.count(tx, pay, &Mark::Declined)?;
    }
    let outcome = PaymentOutcome::Failed {
        payment_id: pay.id,
        reason: reason.to_string(),
    };
    c.tell_order(tx, pay, outcome)
}

/// A payment its payer (or an admin) may see; anyone else gets 404.
pub(super) fn load_for(state: &AppState, p: &Principal, id: PaymentId) -> Result<Payment> {
    let rtx = state.store.read()?;
    store::get(&rtx, id)?
        .filter(|pay| p.is_admin() || pay.payer == p.user_id)
        .ok_or_else(|| Error::not_found("payment"))
}

/// The payer's second step (the test gateway's 3-D Secure stand-in).
pub async fn confirm(
    state: &AppState,
    p: &Principal,
    id: PaymentId,
    code: String,
) -> Result<Payment> {
    let pay = load_for(state, p, id)?;
    if pay.payer != p.user_id {
        return Err(Error::not_found("payment"));
    }
    if pay.status != Status::RequiresConfirmation {
        return Err(Error::conflict(
            "not_awaiting_confirmation",
            "this payment is not waiting for a confirmation",
        ));
    }
    let provider = state.payments.provider(pay.method)?;
    let step = provider.confirm(&pay, &code).await?;
    let c = Ctx::of(state, p.actor());
    state
        .store
        .write(move |tx| {
            let mut pay = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
            if pay.status != Status::RequiresConfirmation {
                return Err(Error::conflict(
                    "not_awaiting_confirmation",
                    "this payment is not waiting for a confirmation",
                ));
            }
            c.audit(tx, "payment.confirmed", &pay, serde_json::json!({}))?;
            apply(tx, &c, &mut pay, step, provider.as_ref())?;
            store::put(tx, &pay)?;
            Ok(pay)
        })
        .await
}
