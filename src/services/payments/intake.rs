//! Turning a payment request into something payable: which fields fit which purpose and
//! method, and a card into a token (sealing it into a saved method if asked). The card
//! number goes no further than this module; nothing here writes.

use super::PaymentsState;
use super::flows::InitiateInput;
use super::methods::{self, SavedMethod};
use super::model::{CardSummary, Method, PaymentMethodId, Purpose};
use crate::app::AppState;
use crate::auth::Principal;
use crate::config::Config;
use crate::error::{Error, FieldError, Result};
use crate::money::Currency;
use time::OffsetDateTime;

pub(super) fn currency_of(config: &Config) -> Currency {
    Currency::parse(&config.payments.currency).unwrap_or(Currency::EUR)
}

pub(super) fn validate_initiate(input: &InitiateInput, config: &Config) -> Result<()> {
    let pc = &config.payments;
    let mut errors = Vec::new();
    let not_allowed = |f: &str, why: &str| FieldError::new(f, "not_allowed", why.to_string());
    match input.purpose {
        Purpose::WalletTopup => {
            if input.order_id.is_some() {
                errors.push(not_allowed(
                    "order_id",
                    "a wallet top-up is not for an order",
                ));
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
                errors.push(FieldError::new(
                    "order_id",
                    "required",
                    "which order to pay",
                ));
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
            (Some(_), Some(_)) => errors.push(not_allowed(
                "payment_method_id",
                "give card or payment_method_id, not both",
            )),
            _ => {}
        }
        if input.save_method && input.card.is_none() {
            errors.push(not_allowed(
                "save_method",
                "only new card details can be saved",
            ));
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
#[derive(Clone)]
pub(super) struct CardPrep {
    pub(super) token: String,
    pub(super) summary: CardSummary,
    pub(super) card_key: String,
    pub(super) method_id: Option<PaymentMethodId>,
    pub(super) new_method: Option<SavedMethod>,
}

/// Tokenises new card details (sealing them into a saved method if asked), or opens a
/// saved method of the payer's. The card number goes no further than this function.
pub(super) fn prepare_card(
    state: &AppState,
    p: &Principal,
    input: &InitiateInput,
    now: OffsetDateTime,
) -> Result<CardPrep> {
    let ps = &state.payments;
    let provider = ps.card.as_ref().ok_or_else(|| {
        Error::invalid(
            "method",
            "method_unavailable",
            "card payment is not enabled on this store",
        )
    })?;
    if let Some(card) = &input.card {
        let t = provider.gateway.tokenize(card, now)?;
        let card_key = ps.audit_key.tag("card", t.fingerprint.as_bytes());
        let new_method = if input.save_method {
            Some(seal_method(
                ps,
                p,
                &t,
                provider.gateway.name(),
                provider.gateway.test_mode(),
                now,
            )?)
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
    let id = input.payment_method_id.ok_or_else(|| {
        Error::invalid(
            "card",
            "required",
            "give card details or a payment_method_id",
        )
    })?;
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

pub(super) fn open_string(
    ps: &PaymentsState,
    id: &[u8],
    field: &str,
    s: &methods::Sealed,
) -> Result<String> {
    String::from_utf8(ps.field_keys.open(id, field, s)?)
        .map_err(|_| Error::Storage("sealed field is not text".into()))
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
        token: ps
            .field_keys
            .seal(&id.to_bytes(), "token", t.token.as_bytes())?,
        fingerprint: ps
            .field_keys
            .seal(&id.to_bytes(), "fingerprint", t.fingerprint.as_bytes())?,
        test_mode,
        created_at: now,
    })
}
