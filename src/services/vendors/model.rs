//! The vendor entity as far as accounts need it: a name, an owner, a status. Onboarding
//! (documents, approval, payouts) builds on this later and adds fields with defaults.

use crate::auth::{UserId, VendorId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorStatus {
    Active,
    Suspended,
}

/// How a vendor charges shipping, in minor units of the store's currency. `None` means
/// the config default (`orders.shipping_flat`, `orders.free_shipping_threshold`);
/// a threshold of 0 means shipping is never free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingSettings {
    #[serde(default)]
    pub flat_rate: Option<i64>,
    #[serde(default)]
    pub free_shipping_threshold: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vendor {
    pub id: VendorId,
    pub name: String,
    pub owner_user_id: UserId,
    pub status: VendorStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default)]
    pub shipping: ShippingSettings,
}

#[derive(Debug, Clone, Serialize)]
pub struct VendorView {
    pub id: VendorId,
    pub name: String,
    pub owner_user_id: UserId,
    pub status: VendorStatus,
    pub created_at: String,
}

impl From<&Vendor> for VendorView {
    fn from(v: &Vendor) -> Self {
        VendorView {
            id: v.id,
            name: v.name.clone(),
            owner_user_id: v.owner_user_id,
            status: v.status,
            created_at: crate::clock::rfc3339(v.created_at),
        }
    }
}
