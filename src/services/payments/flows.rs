//! The payment commands: initiate, confirm, refund, review decisions, marking cash paid
//! and hosted-gateway callbacks. Each records its change, its ledger entry, its events
//! and its audit entry in one transaction; gateway calls happen between transactions,
//! never inside one.

use super::audit;
use super::fraud::{self, Mark};
use super::gateway::{CallbackRefusal, CardInput, verify_callback};
use super::ledger::{self, Account, JournalEntry};
use super::methods::{self, SavedMethod};
use super::model::{
    CardSummary, FraudAction, Method, NextAction, Payment, PaymentId, PaymentMethodId,
    PaymentOutcome, Purpose, Status,
};
use super::providers::{PaymentProvider, Step};
use super::{PaymentsState, store};
use crate::app::AppState;
use crate::auth::Principal;
use crate::config::Config;
use crate::error::{Error, FieldError, Result};
use crate::log::event::{Envelope, Event};
use crate::money::{Currency, Money};
use crate::store::Tx;
use serde::Deserialize;
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    #[serde(default)]
    pub amount: Option<Money>,
    pub reason: String,
}

/// What the closures of one command share.
#[derive(Clone)]
struct Ctx {
    payments: Arc<PaymentsState>,
    config: Arc<Config>,
    actor: String,
    now: OffsetDateTime,
}

impl Ctx {
    fn of(state: &AppState, actor: String) -> Ctx {
        Ctx {
            payments: state.payments.clone(),
            config: state.config.clone(),
            actor,
            now: state.clock.now(),
        }
    }

    fn audit(&self, tx: &Tx<'_>, action: &str, p: &Payment, details: serde_json::Value) -> Result<()> {
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

    fn tell_order(&self, tx: &mut Tx<'_>, p: &Payment, outcome: PaymentOutcome) -> Result<()> {
        if let (Some(order), Some(orders)) = (p.order_id, self.payments.orders()) {
            orders.on_payment_result(tx, order, &outcome)?;
        }
        Ok(())
    }

    fn subjects(&self, p: &Payment) -> Vec<String> {
        fraud::subjects(&p.payer.to_string(), p.client_ip.as_deref(), p.card_key.as_deref())
    }
}

fn currency_of(config: &Config) -> Currency {
    Currency::parse(&config.payments.currency).unwrap_or(Currency::EUR)
}

fn validate_initiate(input: &InitiateInput, config: &Config) -> Result<()> {
    let pc = &config.payments;
    let mut errors = Vec::new();
    let not_allowed = |f: &str, why: &str| FieldError::new(f, "not_allowed", why.to_string());
    match input.purpose {
        Purpose::WalletTopup => {
            if input.order_id.is_some() {
                errors.push(not_allowed("order_id", "a wallet top-up is not for an order"));
            }
            match input.amount {
                None => errors.push(FieldError::new("amount", "required", "how much to add")),
                Some(m) if m.currency != currency_of(config) => errors.push(FieldError::new(
                    "amount.currency",
                    "currency_mismatch",
                    format!("wallets here are in {}", pc.currency),
                )),
                Some(m) if m.amount < pc.topup_min || m.amount > pc.topup_max => {
                    errors.push(FieldError::new(
                        "amount.amount",
                        "out_of_range",
                        format!("must be between {} and {}", pc.topup_min, pc.topup_max),
                    ))
                }
                Some(_) => {}
            }
            if matches!(input.method, Method::Wallet | Method::Cod) {
                errors.push(FieldError::new(
                    "method",
                    "method_not_allowed",
                    "a wallet is topped up by card or the hosted payment page",
                ));
            }
        }
        Purpose::Order => {
            if input.order_id.is_none() {
                errors.push(FieldError::new("order_id", "required", "which order to pay"));
            }
            if input.amount.is_some() {
                errors.push(not_allowed("amount", "the order decides the amount"));
            }
        }
    }
    if input.method == Method::Card {
        match (&input.card, input.payment_method_id) {
            (None, None) => errors.push(FieldError::new(
                "card",
                "required",
                "give card details or a saved payment_method_id",
            )),
            (Some(_), Some(_)) => errors.push(not_allowed("payment_method_id", "give card or payment_method_id, not both")),
            _ => {}
        }
        if input.save_method && input.card.is_none() {
            errors.push(not_allowed("save_method", "only new card details can be saved"));
        }
    } else {
        if input.card.is_some() {
            errors.push(not_allowed("card", "only for method card"));
        }
        if input.payment_method_id.is_some() {
            errors.push(not_allowed("payment_method_id", "only for method card"));
        }
        if input.save_method {
            errors.push(not_allowed("save_method", "only for method card"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

/// A card ready to charge: its token and what we keep of it.
struct CardPrep {
    token: String,
    summary: CardSummary,
    card_key: String,
    method_id: Option<PaymentMethodId>,
    new_method: Option<SavedMethod>,
}

/// Tokenises new card details (sealing them into a saved method if asked), or opens a
/// saved method of the payer's. The card number goes no further than this function.
fn prepare_card(state: &AppState, p: &Principal, input: &InitiateInput, now: OffsetDateTime) -> Result<CardPrep> {
    let ps = &state.payments;
    let provider = ps.card.as_ref().ok_or_else(|| {
        Error::invalid("method", "method_unavailable", "card payment is not enabled on this store")
    })?;
    if let Some(card) = &input.card {
        let t = provider.gateway.tokenize(card, now)?;
        let card_key = ps.audit_key.tag("card", t.fingerprint.as_bytes());
        let new_method = if input.save_method {
            Some(seal_method(ps, p, &t, provider.gateway.name(), provider.gateway.test_mode(), now)?)
        } else {
            None
        };
        return Ok(CardPrep {
            token: t.token,
            summary: t.card,
            card_key,
            method_id: new_method.as_ref().map(|m| m.id),
            new_method,
        });
    }
    let id = input
        .payment_method_id
        .ok_or_else(|| Error::invalid("card", "required", "give card details or a payment_method_id"))?;
    let rtx = state.store.read()?;
    let m = methods::get(&rtx, id)?
        .filter(|m| m.user_id == p.user_id)
        .ok_or_else(|| Error::not_found("payment method"))?;
    let token = open_string(ps, &m.id.to_bytes(), "token", &m.token)?;
    let fingerprint = open_string(ps, &m.id.to_bytes(), "fingerprint", &m.fingerprint)?;
    Ok(CardPrep {
        token,
        summary: m.card.clone(),
        card_key: ps.audit_key.tag("card", fingerprint.as_bytes()),
        method_id: Some(m.id),
        new_method: None,
    })
}

fn open_string(ps: &PaymentsState, id: &[u8], field: &str, s: &methods::Sealed) -> Result<String> {
    String::from_utf8(ps.field_keys.open(id, field, s)?).map_err(|_| Error::Storage("sealed field is not text".into()))
}

pub(super) fn seal_method(
    ps: &PaymentsState,
    p: &Principal,
    t: &super::gateway::Tokenized,
    gateway: &str,
    test_mode: bool,
    now: OffsetDateTime,
) -> Result<SavedMethod> {
    let id = PaymentMethodId::new();
    Ok(SavedMethod {
        id,
        user_id: p.user_id,
        card: t.card.clone(),
        gateway: gateway.into(),
        token: ps.field_keys.seal(&id.to_bytes(), "token", t.token.as_bytes())?,
        fingerprint: ps.field_keys.seal(&id.to_bytes(), "fingerprint", t.fingerprint.as_bytes())?,
        test_mode,
        created_at: now,
    })
}

/// Starts a payment: validates, scores it for fraud, records it, and lets its provider
/// take it. Wallet payments are decided entirely inside one transaction.
pub async fn initiate(state: &AppState, p: &Principal, client_ip: Option<String>, input: InitiateInput) -> Result<Payment> {
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
        .write(move |tx| {
            let (amount, vendor_shares) = match input.purpose {
                Purpose::WalletTopup => (
                    input.amount.ok_or_else(|| Error::invalid("amount", "required", "how much to add"))?,
                    Vec::new(),
                ),
                Purpose::Order => {
                    let order = input.order_id.ok_or_else(|| Error::not_found("order"))?;
                    let orders = c.payments.orders().ok_or_else(|| Error::not_found("order"))?;
                    let due = orders.amount_due(tx, order, payer)?;
                    if due.amount.amount <= 0 {
                        return Err(Error::conflict("nothing_due", "nothing is due on this order"));
                    }
                    (due.amount, due.vendor_shares)
                }
            };
            let card_key = card.as_ref().map(|k| k.card_key.clone());
            let now_u = c.now.unix_timestamp();
            let subjects = fraud::subjects(&payer.to_string(), client_ip.as_deref(), card_key.as_deref());
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
                    amount: amount.amount,
                    user: acts.next().unwrap_or_default(),
                    address: client_ip.as_ref().and_then(|_| acts.next()),
                    card: card_key.as_ref().and_then(|_| acts.next()),
                    card_key: card_key.clone(),
                    account_age_secs: (c.now - created).whole_seconds(),
                },
            );
            fraud::record(tx, &subjects, now_u, &Mark::Attempt { amount: amount.amount, card_key: card_key.clone() })?;
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
                fraud: Some(verdict.clone()),
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
            match verdict.action {
                FraudAction::Block => fail(tx, &c, &mut pay, "fraud_suspected", false)?,
                FraudAction::Review => {
                    pay.status = Status::InReview;
                    pay.next_action = Some(NextAction::AwaitReview);
                    if let Some(t) = &token {
                        pay.sealed_token = Some(c.payments.field_keys.seal(&pay.id.to_bytes(), "token", t.as_bytes())?);
                    }
                    c.audit(tx, "payment.held_for_review", &pay, serde_json::json!({"score": verdict.score}))?;
                }
                FraudAction::Allow => {
                    if let Some(step) = prov.start_local(&pay) {
                        apply(tx, &c, &mut pay, step, prov.as_ref())?;
                    }
                }
            }
            store::put(tx, &pay)?;
            Ok((pay, token))
        })
        .await?;
    match (payment.status, token) {
        (Status::Processing, Some(token)) => remote_start(state, &ctx, payment, provider, token).await,
        _ => Ok(payment),
    }
}

/// Asks the gateway to take a recorded payment, then records what it said.
async fn remote_start(
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
                    let mut pay = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
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
            let reason = if matches!(e, Error::Unavailable { .. }) { "gateway_unavailable" } else { "gateway_error" };
            state
                .store
                .write(move |tx| {
                    let mut pay = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
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
fn apply(tx: &mut Tx<'_>, c: &Ctx, pay: &mut Payment, step: Step, provider: &dyn PaymentProvider) -> Result<()> {
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
            c.audit(tx, "payment.captured", pay, serde_json::json!({"journal_id": jid, "amount": pay.amount}))?;
            fraud::record(tx, &c.subjects(pay), c.now.unix_timestamp(), &Mark::Succeeded { amount: pay.amount.amount })?;
            let outcome = PaymentOutcome::Succeeded { payment_id: pay.id, amount: pay.amount };
            c.tell_order(tx, pay, outcome)
        }
        Step::Declined { reason } => fail(tx, c, pay, &reason, true),
        Step::Waiting { status, action, provider_ref } => {
            pay.status = status;
            pay.next_action = Some(action);
            if provider_ref.is_some() {
                pay.provider_ref = provider_ref;
            }
            c.audit(tx, "payment.pending", pay, serde_json::json!({"status": status.as_str()}))?;
            if status == Status::AwaitingCash {
                let outcome = PaymentOutcome::Deferred { payment_id: pay.id };
                c.tell_order(tx, pay, outcome)?;
            }
            Ok(())
        }
    }
}

fn fail(tx: &mut Tx<'_>, c: &Ctx, pay: &mut Payment, reason: &str, declined: bool) -> Result<()> {
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
    c.audit(tx, "payment.failed", pay, serde_json::json!({"reason": reason}))?;
    if declined {
        fraud::record(tx, &c.subjects(pay), c.now.unix_timestamp(), &Mark::Declined)?;
    }
    let outcome = PaymentOutcome::Failed { payment_id: pay.id, reason: reason.to_string() };
    c.tell_order(tx, pay, outcome)
}

/// A payment its payer (or an admin) may see; anyone else gets 404.
fn load_for(state: &AppState, p: &Principal, id: PaymentId) -> Result<Payment> {
    let rtx = state.store.read()?;
    store::get(&rtx, id)?
        .filter(|pay| p.is_admin() || pay.payer == p.user_id)
        .ok_or_else(|| Error::not_found("payment"))
}

/// The payer's second step (the test gateway's 3-D Secure stand-in).
pub async fn confirm(state: &AppState, p: &Principal, id: PaymentId, code: String) -> Result<Payment> {
    let pay = load_for(state, p, id)?;
    if pay.payer != p.user_id {
        return Err(Error::not_found("payment"));
    }
    if pay.status != Status::RequiresConfirmation {
        return Err(Error::conflict("not_awaiting_confirmation", "this payment is not waiting for a confirmation"));
    }
    let provider = state.payments.provider(pay.method)?;
    let step = provider.confirm(&pay, &code).await?;
    let c = Ctx::of(state, p.actor());
    state
        .store
        .write(move |tx| {
            let mut pay = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
            if pay.status != Status::RequiresConfirmation {
                return Err(Error::conflict("not_awaiting_confirmation", "this payment is not waiting for a confirmation"));
            }
            c.audit(tx, "payment.confirmed", &pay, serde_json::json!({}))?;
            apply(tx, &c, &mut pay, step, provider.as_ref())?;
            store::put(tx, &pay)?;
            Ok(pay)
        })
        .await
}

/// Gives money back to the original method (admin only): full or partial, never more
/// than was captured in total. Wallet refunds are immediate; card refunds are reserved
/// in the ledger first, then sent to the gateway, and undone if the gateway refuses.
pub async fn refund(state: &AppState, admin: &Principal, id: PaymentId, input: RefundInput) -> Result<Payment> {
    admin.require_admin()?;
    let reason = input.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid("reason", "invalid_length", "must be 1 to 500 characters"));
    }
    let pay = load_for(state, admin, id)?;
    let amount = input.amount.unwrap_or(Money::new(pay.refundable(), pay.amount.currency));
    if amount.currency != pay.amount.currency {
        return Err(Error::invalid("amount.currency", "currency_mismatch", format!("the payment is in {}", pay.amount.currency)));
    }
    if amount.amount <= 0 && input.amount.is_some() {
        return Err(Error::invalid("amount.amount", "out_of_range", "must be above 0"));
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
                return Err(Error::conflict("not_refundable", "only a succeeded payment can be refunded"));
            }
            if amount.amount <= 0 {
                return Err(Error::conflict("refund_exceeds_captured", "this payment is already fully refunded"));
            }
            if amount.amount > pay.refundable() {
                return Err(Error::conflict(
                    "refund_exceeds_captured",
                    format!("at most {} can still be refunded", Money::new(pay.refundable(), amount.currency)),
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
                    lines: vec![(from, Money::new(-amount.amount, amount.currency)), (back_to, amount)],
                    reference: format!("payment:{}", pay.id),
                    memo: format!("refund: {why}"),
                    at: c2.now,
                },
            )?;
            pay.refunded += amount.amount;
            pay.journal.push(jid);
            pay.updated_at = c2.now;
            if remote {
                c2.audit(tx, "payment.refund_started", &pay, serde_json::json!({"amount": amount, "reason": why, "journal_id": jid}))?;
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
                    let posted = ledger::entry_in(tx, jid)?.ok_or_else(|| Error::internal("refund entry vanished"))?;
                    let undo = ledger::post(
                        tx,
                        JournalEntry {
                            lines: posted
                                .postings
                                .iter()
                                .map(|l| (l.account.clone(), Money::new(-l.amount.amount, l.amount.currency)))
                                .collect(),
                            reference: format!("payment:{}", pay.id),
                            memo: "refund undone: the gateway refused it".into(),
                            at: c.now,
                        },
                    )?;
                    pay.refunded -= amount.amount;
                    pay.journal.push(undo);
                    c.audit(tx, "payment.refund_failed", &pay, serde_json::json!({"amount": amount, "error": e.to_string()}))?;
                    store::put(tx, &pay)?;
                    Ok(Err(e))
                }
            }
        })
        .await?
}

fn refunded(tx: &mut Tx<'_>, c: &Ctx, pay: &Payment, amount: Money, reason: &str, jid: ledger::JournalId) -> Result<()> {
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
    c.audit(tx, "payment.refunded", pay, serde_json::json!({"amount": amount, "reason": reason, "journal_id": jid}))?;
    let outcome = PaymentOutcome::Refunded { payment_id: pay.id, amount };
    c.tell_order(tx, pay, outcome)
}

/// An admin's decision on a payment the fraud rules held.
pub async fn review(state: &AppState, admin: &Principal, id: PaymentId, approve: bool, note: String) -> Result<Payment> {
    admin.require_admin()?;
    if note.chars().count() > 500 {
        return Err(Error::invalid("note", "too_long", "at most 500 characters"));
    }
    let pay = load_for(state, admin, id)?;
    let provider = state.payments.provider(pay.method)?;
    let c = Ctx::of(state, admin.actor());
    let (c2, prov) = (c.clone(), provider.clone());
    let (pay, token) = state
        .store
        .write(move |tx| {
            let mut pay = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
            if pay.status != Status::InReview {
                return Err(Error::conflict("not_in_review", "this payment is not waiting for a review"));
            }
            if !approve {
                c2.audit(tx, "review.rejected", &pay, serde_json::json!({"note": note}))?;
                fail(tx, &c2, &mut pay, "rejected_in_review", false)?;
                store::put(tx, &pay)?;
                return Ok((pay, None));
            }
            c2.audit(tx, "review.approved", &pay, serde_json::json!({"note": note}))?;
            let token = match &pay.sealed_token {
                Some(s) => Some(open_string(&c2.payments, &pay.id.to_bytes(), "token", s)?),
                None => None,
            };
            pay.status = Status::Processing;
            pay.next_action = None;
            pay.sealed_token = None;
            if let Some(step) = prov.start_local(&pay) {
                apply(tx, &c2, &mut pay, step, prov.as_ref())?;
            }
            store::put(tx, &pay)?;
            Ok((pay, token))
        })
        .await?;
    match (pay.status, token) {
        (Status::Processing, Some(token)) => remote_start(state, &c, pay, provider, token).await,
        _ => Ok(pay),
    }
}

/// Cash on delivery received: an admin, or a vendor the order concerns, marks it paid.
pub async fn mark_paid(state: &AppState, p: &Principal, id: PaymentId) -> Result<Payment> {
    let rtx = state.store.read()?;
    let pay = store::get(&rtx, id)?.ok_or_else(|| Error::not_found("payment"))?;
    drop(rtx);
    let vendor_ok = p.vendor_id.is_some_and(|v| pay.vendor_shares.iter().any(|(s, _)| *s == v));
    if !(p.is_admin() || vendor_ok) {
        return Err(Error::not_found("payment"));
    }
    let provider = state.payments.provider(pay.method)?;
    let c = Ctx::of(state, p.actor());
    state
        .store
        .write(move |tx| {
            let mut pay = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("payment"))?;
            if pay.status != Status::AwaitingCash {
                return Err(Error::conflict("not_awaiting_cash", "this payment is not waiting for cash"));
            }
            c.audit(tx, "payment.marked_paid", &pay, serde_json::json!({}))?;
            apply(tx, &c, &mut pay, Step::Captured { provider_ref: None }, provider.as_ref())?;
            store::put(tx, &pay)?;
            Ok(pay)
        })
        .await
}

/// A hosted-gateway callback, as the provider sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    pub event_id: String,
    pub session_id: PaymentId,
    pub status: CallbackStatus,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub amount: Option<Money>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    Succeeded,
    Failed,
}

/// Applies a signed provider callback: signature and timestamp first, then the event id
/// (each applied once), all in one transaction so a refused callback changes nothing.
pub async fn hosted_callback(state: &AppState, timestamp: &str, signature: &str, body: &[u8]) -> Result<Payment> {
    let hosted = state.payments.hosted.clone().ok_or_else(|| Error::not_found("hosted gateway"))?;
    let now = state.clock.now();
    verify_callback(&hosted.secret, timestamp, signature, body, now, state.config.payments.hosted_tolerance_secs)
        .map_err(|r| {
            Error::Unauthorized(
                match r {
                    CallbackRefusal::Missing => "missing or malformed signature headers",
                    CallbackRefusal::BadSignature => "the callback signature does not verify",
                    CallbackRefusal::Stale => "the callback timestamp is outside the replay window",
                }
                .into(),
            )
        })?;
    let cb: Callback = crate::http::extract::parse_json(body).map_err(|_| Error::BadRequest("malformed callback body".into()))?;
    if cb.event_id.is_empty() || cb.event_id.len() > 200 {
        return Err(Error::invalid("event_id", "invalid_length", "must be 1 to 200 characters"));
    }
    let c = Ctx::of(state, "provider:hosted".into());
    state
        .store
        .write(move |tx| {
            if !store::claim_provider_event(tx, &cb.event_id, cb.session_id)? {
                return Err(Error::conflict("duplicate_event", "this provider event was already applied"));
            }
            let mut pay = store::get_in(tx, cb.session_id)?
                .filter(|p| p.method == Method::Hosted)
                .ok_or_else(|| Error::not_found("payment"))?;
            if pay.status != Status::RequiresRedirect {
                return Err(Error::conflict("not_awaiting_provider", "this payment is not waiting for the provider"));
            }
            if cb.amount.is_some_and(|a| a != pay.amount) {
                return Err(Error::conflict("amount_mismatch", "the provider reports a different amount"));
            }
            c.audit(tx, "payment.callback", &pay, serde_json::json!({"event_id": cb.event_id, "status": format!("{:?}", cb.status)}))?;
            let step = match cb.status {
                CallbackStatus::Succeeded => Step::Captured { provider_ref: Some(cb.event_id.clone()) },
                CallbackStatus::Failed => Step::Declined {
                    reason: cb.reason.clone().unwrap_or_else(|| "declined_by_provider".into()),
                },
            };
            apply(tx, &c, &mut pay, step, hosted.as_ref())?;
            store::put(tx, &pay)?;
            Ok(pay)
        })
        .await
}

/// Saves a card as a payment method (tokenised; token and fingerprint sealed).
pub async fn add_method(state: &AppState, p: &Principal, card: CardInput) -> Result<methods::MethodView> {
    let ps = state.payments.clone();
    let provider = ps.card.as_ref().ok_or_else(|| {
        Error::invalid("card", "method_unavailable", "card payment is not enabled on this store")
    })?;
    let now = state.clock.now();
    let t = provider.gateway.tokenize(&card, now)?;
    let m = seal_method(&ps, p, &t, provider.gateway.name(), provider.gateway.test_mode(), now)?;
    let actor = p.actor();
    state
        .store
        .write(move |tx| {
            methods::put(tx, &m)?;
            audit::append(
                tx,
                &ps.audit_key,
                now,
                "method.added",
                &actor,
                None,
                serde_json::json!({"payment_method_id": m.id, "brand": m.card.brand, "last4": m.card.last4}),
            )?;
            Ok(methods::MethodView::from(&m))
        })
        .await
}

/// Removes one of the caller's saved methods (404 for anyone else's).
pub async fn remove_method(state: &AppState, p: &Principal, id: PaymentMethodId) -> Result<()> {
    let ps = state.payments.clone();
    let (user, actor, now) = (p.user_id, p.actor(), state.clock.now());
    state
        .store
        .write(move |tx| {
            let m = methods::get_in(tx, id)?
                .filter(|m| m.user_id == user)
                .ok_or_else(|| Error::not_found("payment method"))?;
            methods::remove(tx, &m)?;
            audit::append(
                tx,
                &ps.audit_key,
                now,
                "method.removed",
                &actor,
                None,
                serde_json::json!({"payment_method_id": m.id}),
            )?;
            Ok(())
        })
        .await
}
