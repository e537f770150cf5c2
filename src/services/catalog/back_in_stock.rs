//! "Tell me when it is back": sign-ups for a sold-out product (or one sold-out variant),
//! recorded in redb so the notifications service can send them when stock returns. One
//! sign-up per product and email (signing up twice changes nothing). It never sends mail.

use super::inventory;
use super::model::{ProductId, ProductStatus, VariantId};
use crate::app::AppState;
use crate::auth::UserId;
use crate::auth::kv;
use crate::error::{Error, Result};
use crate::services::users::model::Email;
use crate::store::tables::PRODUCT_EMAIL_TO_BACK_IN_STOCK;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignUp {
    pub product_id: ProductId,
    /// The variant asked for; `None` means any variant.
    #[serde(default)]
    pub variant_id: Option<VariantId>,
    pub email: String,
    #[serde(default)]
    pub user_id: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn key(product: ProductId, email: &Email) -> Vec<u8> {
    kv::concat(&product.to_bytes(), email.key().as_bytes())
}

/// Records a sign-up. 422 for a bad email or a variant of another product, 404 for a
/// product nobody may buy, 409 `in_stock` when what was asked for is available now.
/// Answers whether this was a new sign-up.
pub async fn sign_up(
    state: &AppState,
    product_id: ProductId,
    variant_id: Option<VariantId>,
    email: &str,
    user_id: Option<UserId>,
) -> Result<bool> {
    let email = Email::parse("email", email).map_err(|e| Error::Validation(vec![e]))?;
    let now = state.clock.now();
    state
        .store
        .write(move |tx| {
            let p = super::store::product_in(tx, product_id)?
                .filter(|p| p.status == ProductStatus::Active)
                .ok_or_else(|| Error::not_found("product"))?;
            if let Some(v) = variant_id
                && p.variant(v).is_none()
            {
                return Err(Error::invalid(
                    "variant_id",
                    "unknown_variant",
                    "not a variant of this product",
                ));
            }
            let inv = inventory::inventory_in(tx, product_id)?;
            let available = match variant_id {
                Some(v) => inv.available_of(v),
                None => inv.total_available(),
            };
            if available > 0 {
                return Err(Error::conflict(
                    "in_stock",
                    "this is in stock now: add it to your cart",
                ));
            }
            let k = key(product_id, &email);
            if kv::read_in::<SignUp>(tx, PRODUCT_EMAIL_TO_BACK_IN_STOCK, &k)?.is_some() {
                return Ok(false);
            }
            let s = SignUp {
                product_id,
                variant_id,
                email: email.as_str().to_string(),
                user_id,
                created_at: now,
            };
            kv::put(tx, PRODUCT_EMAIL_TO_BACK_IN_STOCK, &k, &s)?;
            Ok(true)
        })
        .await
}

/// Every sign-up for a product, by email (what a notifier reads when stock returns).
pub fn sign_ups(state: &AppState, product_id: ProductId) -> Result<Vec<SignUp>> {
    let rtx = state.store.read()?;
    let Some(t) = kv::open_ro(&rtx, PRODUCT_EMAIL_TO_BACK_IN_STOCK)? else {
        return Ok(Vec::new());
    };
    let prefix = product_id.to_bytes();
    let mut out = Vec::new();
    for item in redb::ReadableTable::range::<&[u8]>(&t, prefix.as_slice()..)? {
        let (k, v) = item?;
        if !k.value().starts_with(&prefix) {
            break;
        }
        out.push(crate::store::codec::decode(v.value())?);
    }
    Ok(out)
}
