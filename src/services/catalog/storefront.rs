//! Reads the storefront needs beyond the catalog API: a vendor's public profile (only an
//! active vendor has one) and the ids the sitemap lists. Never writes.

use crate::app::AppState;
use crate::auth::VendorId;
use crate::error::{Error, Result};
use crate::services::vendors::model::VendorStatus;
use serde::Serialize;

/// What shoppers may know of a vendor.
#[derive(Debug, Clone, Serialize)]
pub struct VendorProfile {
    pub id: VendorId,
    pub name: String,
    /// RFC 3339 UTC.
    pub since: String,
}

/// The public profile of an active vendor; a suspended or unknown one is 404.
pub fn vendor_profile(state: &AppState, id: VendorId) -> Result<VendorProfile> {
    let rtx = state.store.read()?;
    let v = crate::services::vendors::store::get(&rtx, id)?
        .filter(|v| v.status == VendorStatus::Active)
        .ok_or_else(|| Error::not_found("vendor"))?;
    Ok(VendorProfile {
        id: v.id,
        name: v.name,
        since: crate::clock::rfc3339(v.created_at),
    })
}
