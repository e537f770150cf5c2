//! A vendor's shipping settings: its flat rate per order part and the subtotal from which
//! shipping is free. Carts and checkout read them (falling back to the config defaults);
//! an order freezes what it was charged. Only the vendor's own users and admins change them.

use super::model::ShippingSettings;
use super::store;
use crate::app::AppState;
use crate::auth::{Principal, VendorId};
use crate::error::{Error, FieldError, Result};
use crate::money::Money;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Largest flat rate or threshold accepted (minor units): 1,000,000.00.
const MAX_AMOUNT: i64 = 100_000_000;

/// The body of `PUT vendor/settings/shipping`: an amount, or `null`/absent for the
/// config default. A threshold of 0 means shipping is never free.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingInput {
    #[serde(default)]
    pub flat_rate: Option<Money>,
    #[serde(default)]
    pub free_shipping_threshold: Option<Money>,
}

/// The settings as stored (`null` = the config default) and what applies now.
#[derive(Debug, Clone, Serialize)]
pub struct ShippingView {
    pub vendor_id: VendorId,
    pub flat_rate: Option<Money>,
    pub free_shipping_threshold: Option<Money>,
    pub effective: EffectiveShipping,
}

#[derive(Debug, Clone, Serialize)]
pub struct EffectiveShipping {
    pub flat_rate: Money,
    pub free_shipping_threshold: Money,
}

fn view(state: &AppState, vendor: VendorId, s: &ShippingSettings) -> ShippingView {
    let cur = crate::services::catalog::currency(state);
    let cfg = &state.config.orders;
    ShippingView {
        vendor_id: vendor,
        flat_rate: s.flat_rate.map(|a| Money::new(a, cur)),
        free_shipping_threshold: s.free_shipping_threshold.map(|a| Money::new(a, cur)),
        effective: EffectiveShipping {
            flat_rate: Money::new(s.flat_rate.unwrap_or(cfg.shipping_flat), cur),
            free_shipping_threshold: Money::new(
                s.free_shipping_threshold
                    .unwrap_or(cfg.free_shipping_threshold),
                cur,
            ),
        },
    }
}

/// A vendor's shipping settings, for its own users or an admin (404 for anyone else).
pub fn get(state: &AppState, p: &Principal, vendor: VendorId) -> Result<ShippingView> {
    p.require_vendor_of(vendor)
        .map_err(|_| Error::not_found("vendor"))?;
    let v = store::get(&state.store.read()?, vendor)?.ok_or_else(|| Error::not_found("vendor"))?;
    Ok(view(state, vendor, &v.shipping))
}

fn parse(
    state: &AppState,
    field: &str,
    m: Option<Money>,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let m = m?;
    let cur = crate::services::catalog::currency(state);
    if m.currency != cur {
        errors.push(FieldError::new(
            format!("{field}.currency"),
            "currency_mismatch",
            format!("this store sells in {cur}"),
        ));
    }
    if !(0..=MAX_AMOUNT).contains(&m.amount) {
        errors.push(FieldError::new(
            format!("{field}.amount"),
            "out_of_range",
            format!("must be between 0 and {MAX_AMOUNT}"),
        ));
    }
    Some(m.amount)
}

/// Replaces a vendor's shipping settings (its own users, or an admin). Carts show the new
/// rule at once; orders already placed keep the shipping they were charged.
pub async fn set(
    state: &AppState,
    p: &Principal,
    vendor: VendorId,
    input: ShippingInput,
) -> Result<ShippingView> {
    p.require_vendor_of(vendor)
        .map_err(|_| Error::not_found("vendor"))?;
    let mut errors = Vec::new();
    let settings = ShippingSettings {
        flat_rate: parse(state, "flat_rate", input.flat_rate, &mut errors),
        free_shipping_threshold: parse(
            state,
            "free_shipping_threshold",
            input.free_shipping_threshold,
            &mut errors,
        ),
    };
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let now = state.clock.now();
    let actor = p.actor();
    state
        .store
        .write(move |tx| {
            let mut v = store::get_in(tx, vendor)?.ok_or_else(|| Error::not_found("vendor"))?;
            v.shipping = settings;
            store::put(tx, &v)?;
            crate::services::users::audit(
                tx,
                now,
                &actor,
                "vendor.shipping_updated",
                None,
                None,
                json!({"vendor_id": vendor, "flat_rate": settings.flat_rate,
                       "free_shipping_threshold": settings.free_shipping_threshold}),
            )
        })
        .await?;
    Ok(view(state, vendor, &settings))
}
