//! API keys as a user manages them: create (shown once), list, revoke. A key carries its
//! creator's role and vendor; creating one needs an interactive login, not another key.

use super::{audit, current_user};
use crate::app::AppState;
use crate::auth::api_keys::{self, ApiKey};
use crate::auth::{ApiKeyId, Principal, Role, VendorId};
use crate::error::{Error, FieldError, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const MAX_LIVE_KEYS: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInput {
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub role: Role,
    pub vendor_id: Option<VendorId>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            role: k.role,
            vendor_id: k.vendor_id,
            created_at: crate::clock::rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(crate::clock::rfc3339),
            revoked_at: k.revoked_at.map(crate::clock::rfc3339),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// The key itself: shown this once, stored only as a hash.
    pub key: String,
}

pub async fn create(state: &AppState, p: &Principal, input: CreateInput) -> Result<CreatedKey> {
    p.require_interactive()?;
    let user = current_user(state, p)?;
    let name =
        super::model::parse_name("name", &input.name).map_err(|e| Error::Validation(vec![e]))?;
    let live = api_keys::of_user(&state.store.read()?, user.id)?
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .count();
    if live >= MAX_LIVE_KEYS {
        return Err(Error::Validation(vec![FieldError::new(
            "name",
            "too_many_keys",
            format!("at most {MAX_LIVE_KEYS} live keys; revoke one first"),
        )]));
    }
    let now = state.clock.now();
    let (secret, key) = api_keys::generate(user.id, name, user.role, user.vendor_id, now);
    let k = key.clone();
    let actor = p.actor();
    state
        .store
        .write(move |tx| {
            api_keys::put(tx, &k)?;
            audit(
                tx,
                now,
                &actor,
                "api_key.created",
                Some(k.user_id),
                None,
                json!({"api_key_id": k.id, "prefix": k.prefix}),
            )
        })
        .await?;
    Ok(CreatedKey {
        view: ApiKeyView::from(&key),
        key: secret,
    })
}

pub fn list(state: &AppState, p: &Principal) -> Result<Vec<ApiKeyView>> {
    current_user(state, p)?;
    Ok(api_keys::of_user(&state.store.read()?, p.user_id)?
        .iter()
        .map(ApiKeyView::from)
        .collect())
}

/// Revokes one of the caller's keys; someone else's is 404. A key may revoke itself.
pub async fn revoke(state: &AppState, p: &Principal, id: ApiKeyId) -> Result<()> {
    let now = state.clock.now();
    let user = p.user_id;
    let actor = p.actor();
    state
        .store
        .write(move |tx| {
            let mut k = api_keys::get_in(tx, id)?
                .filter(|k| k.user_id == user)
                .ok_or_else(|| Error::not_found("API key"))?;
            if k.revoked_at.is_none() {
                k.revoked_at = Some(now);
                api_keys::put(tx, &k)?;
                audit(
                    tx,
                    now,
                    &actor,
                    "api_key.revoked",
                    Some(user),
                    None,
                    json!({"api_key_id": id}),
                )?;
            }
            Ok(())
        })
        .await
}
