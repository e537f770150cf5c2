//! Commands on saved payment methods: add (tokenise, seal, record) and remove, each with
//! its audit entry. Only the owner sees or removes a method; anyone else gets 404.

use super::audit;
use super::gateway::CardInput;
use super::intake::seal_method;
use super::methods;
use super::model::PaymentMethodId;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};

/// Saves a card as a payment method (tokenised; token and fingerprint sealed).
pub async fn add_method(
    state: &AppState,
    p: &Principal,
    card: CardInput,
) -> Result<methods::MethodView> {
    let ps = state.payments.clone();
    let provider = ps.card.as_ref().ok_or_else(|| {
        Error::invalid(
            "card",
            "method_unavailable",
            "card payment is not enabled on this store",
        )
    })?;
    let now = state.clock.now();
    let t = provider.gateway.tokenize(&card, now)?;
    let m = seal_method(
        &ps,
        p,
        &t,
        provider.gateway.name(),
        provider.gateway.test_mode(),
        now,
    )?;
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
