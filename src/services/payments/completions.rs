//! Payments completed by someone other than the payer: an admin's review decision, cash
//! marked paid by an admin or the vendor, and the hosted provider's signed callback.
//! Each is one transaction; a refused one changes nothing.

use super::flows::{Ctx, apply, fail, load_for, remote_start};
use super::gateway::{CallbackRefusal, verify_callback};
use super::intake::open_string;
use super::model::{Method, Payment, PaymentId, Status};
use super::providers::Step;
use super::store;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::money::Money;
use serde::Deserialize;

/// An admin's decision on a payment the fraud rules held.
pub async fn review(
    state: &AppState,
    admin: &Principal,
    id: PaymentId,
    approve: bool,
    note: String,
) -> Result<Payment> {
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
                return Err(Error::conflict(
                    "not_in_review",
                    "this payment is not waiting for a review",
                ));
            }
            if !approve {
                c2.audit(
                    tx,
                    "review.rejected",
                    &pay,
                    serde_json::json!({"note": note}),
                )?;
                fail(tx, &c2, &mut pay, "rejected_in_review", false)?;
                store::put(tx, &pay)?;
                return Ok((pay, None));
            }
            c2.audit(
                tx,
                "review.approved",
                &pay,
                serde_json::json!({"note": note}),
            )?;
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
    let vendor_ok = p
        .vendor_id
        .is_some_and(|v| pay.vendor_shares.iter().any(|(s, _)| *s == v));
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
                return Err(Error::conflict(
                    "not_awaiting_cash",
                    "this payment is not waiting for cash",
                ));
            }
            c.audit(tx, "payment.marked_paid", &pay, serde_json::json!({}))?;
            apply(
                tx,
                &c,
                &mut pay,
                Step::Captured { provider_ref: None },
                provider.as_ref(),
            )?;
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
pub async fn hosted_callback(
    state: &AppState,
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Result<Payment> {
    let hosted = state
        .payments
        .hosted
        .clone()
        .ok_or_else(|| Error::not_found("hosted gateway"))?;
    let now = state.clock.now();
    verify_callback(
        &hosted.secret,
        timestamp,
        signature,
        body,
        now,
        state.config.payments.hosted_tolerance_secs,
    )
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
    let cb: Callback = crate::http::extract::parse_json(body)
        .map_err(|_| Error::BadRequest("malformed callback body".into()))?;
    if cb.event_id.is_empty() || cb.event_id.len() > 200 {
        return Err(Error::invalid(
            "event_id",
            "invalid_length",
            "must be 1 to 200 characters",
        ));
    }
    let c = Ctx::of(state, "provider:hosted".into());
    state
        .store
        .write(move |tx| {
            if !store::claim_provider_event(tx, &cb.event_id, cb.session_id)? {
                return Err(Error::conflict(
                    "duplicate_event",
                    "this provider event was already applied",
                ));
            }
            let mut pay = store::get_in(tx, cb.session_id)?
                .filter(|p| p.method == Method::Hosted)
                .ok_or_else(|| Error::not_found("payment"))?;
            if pay.status != Status::RequiresRedirect {
                return Err(Error::conflict(
                    "not_awaiting_provider",
                    "this payment is not waiting for the provider",
                ));
            }
            if cb.amount.is_some_and(|a| a != pay.amount) {
                return Err(Error::conflict(
                    "amount_mismatch",
                    "the provider reports a different amount",
                ));
            }
            c.audit(
                tx,
                "payment.callback",
                &pay,
                serde_json::json!({"event_id": cb.event_id, "status": format!("{:?}", cb.status)}),
            )?;
            let step = match cb.status {
                CallbackStatus::Succeeded => Step::Captured {
                    provider_ref: Some(cb.event_id.clone()),
                },
                CallbackStatus::Failed => Step::Declined {
                    reason: cb
                        .reason
                        .clone()
                        .unwrap_or_else(|| "declined_by_provider".into()),
                },
            };
            apply(tx, &c, &mut pay, step, hosted.as_ref())?;
            store::put(tx, &pay)?;
            Ok(pay)
        })
        .await
}
