//! API keys: `souk_<prefix>_<secret>`, shown once, stored as a SHA-256 hash with a visible
//! prefix. A key acts with its creator's role at creation (a vendor's key only for that
//! vendor) and stops working if the creator's role, vendor or status changes.

use super::kv::{self, concat};
use super::tokens::{random_token, token_hash};
use super::{ApiKeyId, Role, UserId, VendorId};
use crate::error::Result;
use crate::store::tables::{
    API_KEY_HASH_TO_API_KEY_ID, API_KEY_ID_TO_API_KEY, USER_API_KEY_TO_UNIT,
};
use redb::{ReadTransaction, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const KEY_PREFIX: &str = "souk_";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the key, shown in lists so a person can tell keys apart.
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    pub role: Role,
    #[serde(default)]
    pub vendor_id: Option<VendorId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A fresh key: the secret to show once, and the record to store.
pub fn generate(
    user: UserId,
    name: String,
    role: Role,
    vendor: Option<VendorId>,
    now: OffsetDateTime,
) -> (String, ApiKey) {
    let public: [u8; 4] = rand::random();
    let prefix = format!("{KEY_PREFIX}{}", hex::encode(public));
    let secret = format!("{prefix}_{}", random_token(""));
    let key = ApiKey {
        id: ApiKeyId::new(),
        user_id: user,
        name,
        prefix,
        hash: hex::encode(token_hash(&secret)),
        role,
        vendor_id: vendor,
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    (secret, key)
}

pub fn looks_like_key(s: &str) -> bool {
    s.starts_with(KEY_PREFIX)
}

pub fn put(wtx: &WriteTransaction, k: &ApiKey) -> Result<()> {
    kv::put(wtx, API_KEY_ID_TO_API_KEY, &k.id.to_bytes(), k)?;
    if let Ok(h) = hex::decode(&k.hash) {
        wtx.open_table(API_KEY_HASH_TO_API_KEY_ID)?
            .insert(h.as_slice(), k.id.to_bytes().as_slice())?;
    }
    wtx.open_table(USER_API_KEY_TO_UNIT)?.insert(
        concat(&k.user_id.to_bytes(), &k.id.to_bytes()).as_slice(),
        (),
    )?;
    Ok(())
}

pub fn get_in(wtx: &WriteTransaction, id: ApiKeyId) -> Result<Option<ApiKey>> {
    kv::read_in(wtx, API_KEY_ID_TO_API_KEY, &id.to_bytes())
}

/// The live key matching `secret`, if any.
pub fn find(rtx: &ReadTransaction, secret: &str) -> Result<Option<ApiKey>> {
    let Some(t) = kv::open_ro(rtx, API_KEY_HASH_TO_API_KEY_ID)? else {
        return Ok(None);
    };
    let id = match redb::ReadableTable::get(&t, token_hash(secret).as_slice())? {
        Some(v) => match <[u8; 16]>::try_from(v.value()) {
            Ok(b) => ApiKeyId::from_bytes(b),
            Err(_) => return Ok(None),
        },
        None => return Ok(None),
    };
    let k: Option<ApiKey> = kv::read(rtx, API_KEY_ID_TO_API_KEY, &id.to_bytes())?;
    Ok(k.filter(|k| k.revoked_at.is_none()))
}

/// A user's keys, newest first, revoked ones included.
pub fn of_user(rtx: &ReadTransaction, user: UserId) -> Result<Vec<ApiKey>> {
    let Some(t) = kv::open_ro(rtx, USER_API_KEY_TO_UNIT)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for k in kv::prefixed_keys(&t, &user.to_bytes())?.iter().rev() {
        if let Some(key) = kv::read::<ApiKey>(rtx, API_KEY_ID_TO_API_KEY, &k[16..])? {
            out.push(key);
        }
    }
    Ok(out)
}

/// Revokes every key of a user (their role, vendor or status changed, or they left).
pub fn revoke_all_of_user(
    wtx: &WriteTransaction,
    user: UserId,
    now: OffsetDateTime,
) -> Result<usize> {
    let ids: Vec<Vec<u8>> = {
        let t = wtx.open_table(USER_API_KEY_TO_UNIT)?;
        kv::prefixed_keys(&t, &user.to_bytes())?
    };
    let mut n = 0;
    for k in ids {
        if let Some(mut key) = kv::read_in::<ApiKey>(wtx, API_KEY_ID_TO_API_KEY, &k[16..])?
            && key.revoked_at.is_none()
        {
            key.revoked_at = Some(now);
            put(wtx, &key)?;
            n += 1;
        }
    }
    Ok(n)
}
