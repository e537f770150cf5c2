//! The user service's tables: users and their email index, single-use tokens (email
//! verification, password reset, MFA login step, first-admin setup) and the audit trail.
//! Every function takes the caller's transaction; none opens or commits one.

use super::model::{Email, User};
use crate::auth::UserId;
use crate::auth::kv;
use crate::auth::tokens::token_hash;
use crate::error::{Error, Result};
use crate::store::tables::{
    AUDIT_ID_TO_ENTRY, EMAIL_TO_USER_ID, ONE_TIME_HASH_TO_GRANT, USER_ID_TO_USER,
};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub fn get(rtx: &ReadTransaction, id: UserId) -> Result<Option<User>> {
    kv::read(rtx, USER_ID_TO_USER, &id.to_bytes())
}

pub fn get_in(wtx: &WriteTransaction, id: UserId) -> Result<Option<User>> {
    kv::read_in(wtx, USER_ID_TO_USER, &id.to_bytes())
}

fn id_from(bytes: &[u8]) -> Option<UserId> {
    <[u8; 16]>::try_from(bytes).ok().map(UserId::from_bytes)
}

pub fn id_by_email(rtx: &ReadTransaction, email: &Email) -> Result<Option<UserId>> {
    let Some(t) = kv::open_ro(rtx, EMAIL_TO_USER_ID)? else {
        return Ok(None);
    };
    Ok(t.get(email.key().as_bytes())?
        .and_then(|v| id_from(v.value())))
}

pub fn id_by_email_in(wtx: &WriteTransaction, email: &Email) -> Result<Option<UserId>> {
    let t = wtx.open_table(EMAIL_TO_USER_ID)?;
    Ok(t.get(email.key().as_bytes())?
        .and_then(|v| id_from(v.value())))
}

/// Inserts a new user; 409 `email_taken` if the address is in use.
pub fn insert(wtx: &WriteTransaction, u: &User) -> Result<()> {
    if id_by_email_in(wtx, &u.email)?.is_some() {
        return Err(Error::conflict(
            "email_taken",
            "an account with this email already exists",
        ));
    }
    wtx.open_table(EMAIL_TO_USER_ID)?
        .insert(u.email.key().as_bytes(), u.id.to_bytes().as_slice())?;
    kv::put(wtx, USER_ID_TO_USER, &u.id.to_bytes(), u)
}

/// Stores a changed user, moving the email index if the address changed.
pub fn update(wtx: &WriteTransaction, old_email: &Email, u: &User) -> Result<()> {
    if old_email.key() != u.email.key() {
        if let Some(other) = id_by_email_in(wtx, &u.email)?
            && other != u.id
        {
            return Err(Error::conflict(
                "email_taken",
                "an account with this email already exists",
            ));
        }
        let mut idx = wtx.open_table(EMAIL_TO_USER_ID)?;
        idx.remove(old_email.key().as_bytes())?;
        idx.insert(u.email.key().as_bytes(), u.id.to_bytes().as_slice())?;
    }
    kv::put(wtx, USER_ID_TO_USER, &u.id.to_bytes(), u)
}

/// Frees an email address (account deletion), so it can register again.
pub fn drop_email(wtx: &WriteTransaction, email: &Email) -> Result<()> {
    wtx.open_table(EMAIL_TO_USER_ID)?
        .remove(email.key().as_bytes())?;
    Ok(())
}

/// Users in id (creation) order after `after`, keeping those `keep` accepts, at most `limit`.
pub fn scan(
    rtx: &ReadTransaction,
    after: Option<UserId>,
    limit: usize,
    keep: impl Fn(&User) -> bool,
) -> Result<(Vec<User>, bool)> {
    let Some(t) = kv::open_ro(rtx, USER_ID_TO_USER)? else {
        return Ok((Vec::new(), false));
    };
    let start = after.map(|a| a.to_bytes());
    let iter = match &start {
        Some(s) => t.range::<&[u8]>((
            std::ops::Bound::Excluded(s.as_slice()),
            std::ops::Bound::Unbounded,
        ))?,
        None => t.range::<&[u8]>(..)?,
    };
    let mut out = Vec::new();
    for item in iter {
        let (_, v) = item?;
        let u: User = crate::store::codec::decode(v.value())?;
        if keep(&u) {
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(u);
        }
    }
    Ok((out, false))
}

pub fn any_admin(rtx: &ReadTransaction) -> Result<bool> {
    let (found, _) = scan(rtx, None, 1, |u| {
        u.role == crate::auth::Role::Admin && u.status != super::model::UserStatus::Deleted
    })?;
    Ok(!found.is_empty())
}

pub fn any_admin_in(wtx: &WriteTransaction) -> Result<bool> {
    let t = wtx.open_table(USER_ID_TO_USER)?;
    for item in t.iter()? {
        let (_, v) = item?;
        let u: User = crate::store::codec::decode(v.value())?;
        if u.role == crate::auth::Role::Admin && u.status != super::model::UserStatus::Deleted {
            return Ok(true);
        }
    }
    Ok(false)
}

// --- single-use tokens ---

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    VerifyEmail,
    ResetPassword,
    MfaLogin,
    SetupAdmin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub kind: GrantKind,
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// For email verification: the address the link was sent to; a changed address makes
    /// the link worthless.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

pub fn put_grant(wtx: &WriteTransaction, token: &str, g: &Grant) -> Result<()> {
    kv::put(wtx, ONE_TIME_HASH_TO_GRANT, &token_hash(token), g)
}

/// The live grant of `kind` for `token`, if any (expired ones are removed on sight).
pub fn grant_in(
    wtx: &WriteTransaction,
    token: &str,
    kind: GrantKind,
    now: OffsetDateTime,
) -> Result<Option<Grant>> {
    let h = token_hash(token);
    let Some(g) = kv::read_in::<Grant>(wtx, ONE_TIME_HASH_TO_GRANT, &h)? else {
        return Ok(None);
    };
    if g.expires_at <= now {
        kv::delete(wtx, ONE_TIME_HASH_TO_GRANT, &h)?;
        return Ok(None);
    }
    Ok((g.kind == kind).then_some(g))
}

pub fn grant(
    rtx: &ReadTransaction,
    token: &str,
    kind: GrantKind,
    now: OffsetDateTime,
) -> Result<Option<Grant>> {
    let g: Option<Grant> = kv::read(rtx, ONE_TIME_HASH_TO_GRANT, &token_hash(token))?;
    Ok(g.filter(|g| g.kind == kind && g.expires_at > now))
}

pub fn delete_grant(wtx: &WriteTransaction, token: &str) -> Result<()> {
    kv::delete(wtx, ONE_TIME_HASH_TO_GRANT, &token_hash(token))
}

/// Removes a user's other grants of `kind` (a new reset link voids older ones).
pub fn delete_grants_of(wtx: &WriteTransaction, user: UserId, kind: GrantKind) -> Result<()> {
    let mut doomed = Vec::new();
    {
        let t = wtx.open_table(ONE_TIME_HASH_TO_GRANT)?;
        for item in t.iter()? {
            let (k, v) = item?;
            if let Ok(g) = crate::store::codec::decode::<Grant>(v.value())
                && g.kind == kind
                && g.user_id == Some(user)
            {
                doomed.push(k.value().to_vec());
            }
        }
    }
    for k in doomed {
        kv::delete(wtx, ONE_TIME_HASH_TO_GRANT, &k)?;
    }
    Ok(())
}

/// Keys of up to `limit` grants expired at `now` (the sweep deletes them), in a snapshot.
pub fn find_expired_grants(
    rtx: &ReadTransaction,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Vec<Vec<u8>>> {
    let Some(t) = kv::open_ro(rtx, ONE_TIME_HASH_TO_GRANT)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        // A grant that no longer decodes grants nothing: it goes too.
        let expired = crate::store::codec::decode::<Grant>(v.value())
            .map(|g| g.expires_at <= now)
            .unwrap_or(true);
        if expired {
            out.push(k.value().to_vec());
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Deletes those of `keys` whose grant is still expired (or unreadable); returns how many.
pub fn delete_expired_grants(
    wtx: &WriteTransaction,
    keys: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<usize> {
    let mut t = wtx.open_table(ONE_TIME_HASH_TO_GRANT)?;
    let mut n = 0;
    for k in keys {
        let expired = match t.get(k.as_slice())? {
            Some(v) => crate::store::codec::decode::<Grant>(v.value())
                .map(|g| g.expires_at <= now)
                .unwrap_or(true),
            None => false,
        };
        if expired {
            t.remove(k.as_slice())?;
            n += 1;
        }
    }
    Ok(n)
}

// --- audit ---

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it: `user:<id>`, `system`, `cli`, or `anonymous`.
    pub actor: String,
    /// What happened, dotted: `login.succeeded`, `login.failed`, `mfa.enabled`, ...
    pub action: String,
    /// The user it happened to, if any.
    #[serde(default)]
    pub subject: Option<UserId>,
    #[serde(default)]
    pub ip: Option<String>,
    /// Non-secret details (never a password, token or code).
    #[serde(default)]
    pub detail: serde_json::Value,
}

pub fn audit(wtx: &WriteTransaction, e: &AuditEntry) -> Result<()> {
    kv::put(wtx, AUDIT_ID_TO_ENTRY, e.id.as_bytes(), e)
}

/// Newest first, before `before` (exclusive), at most `limit`; and whether more remain.
pub fn audit_page(
    rtx: &ReadTransaction,
    before: Option<uuid::Uuid>,
    limit: usize,
) -> Result<(Vec<AuditEntry>, bool)> {
    let Some(t) = kv::open_ro(rtx, AUDIT_ID_TO_ENTRY)? else {
        return Ok((Vec::new(), false));
    };
    let end = before.map(|b| *b.as_bytes());
    let iter = match &end {
        Some(e) => t.range::<&[u8]>(..e.as_slice())?,
        None => t.range::<&[u8]>(..)?,
    };
    let mut out = Vec::new();
    for item in iter.rev() {
        let (_, v) = item?;
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(crate::store::codec::decode(v.value())?);
    }
    Ok((out, false))
}
