//! Vendors as entities an admin creates: a name and an owner, who becomes a vendor user
//! bound to it in the same transaction. Onboarding, approval and suspension flows come
//! later; this module never decides what a vendor may sell.

pub mod api;
pub mod model;
pub mod shipping;
pub mod store;

use crate::app::AppState;
use crate::auth::{Principal, Role, UserId, VendorId};
use crate::error::{Error, Result};
use crate::services::users::model::UserStatus;
use crate::services::{Page, PageQuery};
use model::{Vendor, VendorStatus, VendorView};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInput {
    pub name: String,
    pub owner_user_id: UserId,
}

/// Creates a vendor and makes its owner a vendor user bound to it. The owner must be an
/// active customer: an admin or another vendor's user cannot silently change sides.
pub async fn create(state: &AppState, p: &Principal, input: CreateInput) -> Result<VendorView> {
    p.require_admin()?;
    let name = crate::services::users::model::parse_name("name", &input.name)
        .map_err(|e| Error::Validation(vec![e]))?;
    let now = state.clock.now();
    let actor = p.actor();
    let vendor = Vendor {
        id: VendorId::new(),
        name,
        owner_user_id: input.owner_user_id,
        status: VendorStatus::Active,
        created_at: now,
        shipping: Default::default(),
    };
    let v = vendor.clone();
    state
        .store
        .write(move |tx| {
            let owner = crate::services::users::store::get_in(tx, v.owner_user_id)?
                .filter(|u| u.status != UserStatus::Deleted)
                .ok_or_else(|| Error::invalid("owner_user_id", "unknown_user", "no such user"))?;
            if owner.status != UserStatus::Active {
                return Err(Error::invalid(
                    "owner_user_id",
                    "user_locked",
                    "the owner's account is locked",
                ));
            }
            if owner.role != Role::Customer {
                return Err(Error::conflict(
                    "owner_not_customer",
                    format!("the owner already has the {} role", owner.role),
                ));
            }
            store::put(tx, &v)?;
            crate::services::users::admin::apply_role(
                tx,
                owner.id,
                Role::Vendor,
                Some(v.id),
                &actor,
                now,
            )?;
            crate::services::users::audit(
                tx,
                now,
                &actor,
                "vendor.created",
                Some(owner.id),
                None,
                json!({"vendor_id": v.id, "name": v.name}),
            )
        })
        .await?;
    Ok(VendorView::from(&vendor))
}

/// A vendor, for an admin or the vendor's own users; anyone else gets 404.
pub fn get(state: &AppState, p: &Principal, id: VendorId) -> Result<VendorView> {
    p.require_vendor_of(id)?;
    let v = store::get(&state.store.read()?, id)?.ok_or_else(|| Error::not_found("vendor"))?;
    Ok(VendorView::from(&v))
}

pub fn list(state: &AppState, p: &Principal, page: PageQuery) -> Result<Page<VendorView>> {
    p.require_admin()?;
    let limit = page.limit()?;
    let after = page.cursor_uuid()?.map(VendorId);
    let (items, more) = store::page(&state.store.read()?, after, limit)?;
    let next_cursor = if more {
        items.last().map(|v| v.id.to_string())
    } else {
        None
    };
    Ok(Page {
        items: items.iter().map(VendorView::from).collect(),
        next_cursor,
    })
}
