//! Sessions: one per login, holding the refresh-token family. Refresh tokens rotate on every
//! use; presenting an already-rotated one revokes the whole session (theft detection).
//! `active` is the one lookup every authenticated request makes (bearer now, cookie later).

use super::kv::{self, concat};
use super::{ApiKeyId, Role, SessionId, UserId, VendorId};
use crate::error::Result;
use crate::store::tables::{
    REFRESH_HASH_TO_SESSION_ID, SESSION_ID_TO_SESSION, USER_SESSION_TO_UNIT,
};
use redb::{ReadTransaction, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub role: Role,
    #[serde(default)]
    pub vendor_id: Option<VendorId>,
    /// Set when the session was opened with an API key (OAuth client credentials).
    #[serde(default)]
    pub api_key_id: Option<ApiKeyId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Hex SHA-256 of the one refresh token that is valid now (none for API-key sessions).
    #[serde(default)]
    pub refresh_hash: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub revoked_reason: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
}

impl Session {
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

pub fn get(rtx: &ReadTransaction, id: SessionId) -> Result<Option<Session>> {
    kv::read(rtx, SESSION_ID_TO_SESSION, &id.to_bytes())
}

pub fn get_in(wtx: &WriteTransaction, id: SessionId) -> Result<Option<Session>> {
    kv::read_in(wtx, SESSION_ID_TO_SESSION, &id.to_bytes())
}

/// The session if it exists, is not revoked and has not expired at `now`.
pub fn active(
    rtx: &ReadTransaction,
    id: SessionId,
    now: OffsetDateTime,
) -> Result<Option<Session>> {
    Ok(get(rtx, id)?.filter(|s| s.is_active(now)))
}

/// Stores a new or changed session, indexing its current refresh hash.
pub fn put(wtx: &WriteTransaction, s: &Session) -> Result<()> {
    kv::put(wtx, SESSION_ID_TO_SESSION, &s.id.to_bytes(), s)?;
    wtx.open_table(USER_SESSION_TO_UNIT)?.insert(
        concat(&s.user_id.to_bytes(), &s.id.to_bytes()).as_slice(),
        (),
    )?;
    if let Some(h) = &s.refresh_hash
        && let Ok(bytes) = hex::decode(h)
    {
        wtx.open_table(REFRESH_HASH_TO_SESSION_ID)?
            .insert(bytes.as_slice(), s.id.to_bytes().as_slice())?;
    }
    Ok(())
}

/// Which session a refresh token belongs to, whether or not it is the current one.
pub fn by_refresh_hash(wtx: &WriteTransaction, hash: &[u8; 32]) -> Result<Option<Session>> {
    let t = wtx.open_table(REFRESH_HASH_TO_SESSION_ID)?;
    let id = match redb::ReadableTable::get(&t, hash.as_slice())? {
        Some(v) => match <[u8; 16]>::try_from(v.value()) {
            Ok(b) => SessionId::from_bytes(b),
            Err(_) => return Ok(None),
        },
        None => return Ok(None),
    };
    drop(t);
    get_in(wtx, id)
}

pub fn revoke(
    wtx: &WriteTransaction,
    s: &mut Session,
    reason: &str,
    now: OffsetDateTime,
) -> Result<()> {
    if s.revoked_at.is_none() {
        s.revoked_at = Some(now);
        s.revoked_reason = Some(reason.to_string());
        put(wtx, s)?;
    }
    Ok(())
}

/// Every session of a user, newest first.
pub fn of_user_in(wtx: &WriteTransaction, user: UserId) -> Result<Vec<Session>> {
    let keys = {
        let t = wtx.open_table(USER_SESSION_TO_UNIT)?;
        kv::prefixed_keys(&t, &user.to_bytes())?
    };
    let mut out = Vec::new();
    for k in keys.iter().rev() {
        if let Ok(b) = <[u8; 16]>::try_from(&k[16..])
            && let Some(s) = get_in(wtx, SessionId::from_bytes(b))?
        {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn of_user(rtx: &ReadTransaction, user: UserId) -> Result<Vec<Session>> {
    let Some(t) = kv::open_ro(rtx, USER_SESSION_TO_UNIT)? else {
        return Ok(Vec::new());
    };
    let keys = kv::prefixed_keys(&t, &user.to_bytes())?;
    let mut out = Vec::new();
    for k in keys.iter().rev() {
        if let Ok(b) = <[u8; 16]>::try_from(&k[16..])
            && let Some(s) = get(rtx, SessionId::from_bytes(b))?
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// Revokes every live session of a user (password reset, lock, role change, deletion).
pub fn revoke_all(
    wtx: &WriteTransaction,
    user: UserId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<usize> {
    let mut n = 0;
    for mut s in of_user_in(wtx, user)? {
        if s.revoked_at.is_none() {
            revoke(wtx, &mut s, reason, now)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Gives every live session of a user a new role and vendor, so a role change takes effect
/// on the next request without logging anyone out.
pub fn set_role_all(
    wtx: &WriteTransaction,
    user: UserId,
    role: Role,
    vendor: Option<VendorId>,
    now: OffsetDateTime,
) -> Result<()> {
    for mut s in of_user_in(wtx, user)? {
        if s.is_active(now) && s.api_key_id.is_none() {
            s.role = role;
            s.vendor_id = vendor;
            put(wtx, &s)?;
        } else if s.is_active(now) {
            // A client-credentials session acts for its key, which the role change revokes.
            revoke(wtx, &mut s, "role_changed", now)?;
        }
    }
    Ok(())
}
