//! Sessions: one per login, holding the refresh-token family. Refresh tokens rotate on every
//! use; presenting an already-rotated one revokes the whole session (theft detection).
//! `active` is the one lookup every authenticated request makes (bearer now, cookie later).
//! Last-seen times are noted in memory by requests ([`LastSeen`]) and written in batches by
//! the users sweep; ended sessions are deleted by [`sweep`].

use super::kv::{self, concat};
use super::{ApiKeyId, Role, SessionId, UserId, VendorId};
use crate::error::Result;
use crate::store::tables::{
    REFRESH_HASH_TO_SESSION_ID, SESSION_ID_TO_SESSION, USER_SESSION_TO_UNIT,
};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
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

// --- last seen ---

/// A session's last-seen time is kept to the minute: a request changes nothing while the
/// stored time is younger than this.
pub const LAST_SEEN_RESOLUTION_SECS: i64 = 60;

/// Last-seen times noted by authenticated requests and not yet written. A request whose
/// session was seen within the last minute does nothing at all; an older one takes a short
/// lock to note `now`, and the sweep writes every noted time in one transaction (so at
/// most one write per session per flush, whatever the request rate).
#[derive(Default)]
pub struct LastSeen {
    pending: Mutex<HashMap<SessionId, OffsetDateTime>>,
}

impl LastSeen {
    /// Notes a request on session `id`, whose stored last-seen time is `stored`.
    pub fn touch(&self, id: SessionId, stored: OffsetDateTime, now: OffsetDateTime) {
        if (now - stored).whole_seconds() < LAST_SEEN_RESOLUTION_SECS {
            return;
        }
        if let Ok(mut m) = self.pending.lock() {
            let t = m.entry(id).or_insert(now);
            if *t < now {
                *t = now;
            }
        }
    }

    /// The noted time of a session not yet written, if any.
    pub fn pending(&self, id: SessionId) -> Option<OffsetDateTime> {
        self.pending.lock().ok()?.get(&id).copied()
    }

    /// A session's last-seen time as the API shows it: stored or noted, the later.
    pub fn of(&self, s: &Session) -> OffsetDateTime {
        self.pending(s.id)
            .map_or(s.last_seen_at, |t| t.max(s.last_seen_at))
    }

    /// Takes every noted time for writing.
    pub fn take(&self) -> Vec<(SessionId, OffsetDateTime)> {
        match self.pending.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Puts back times whose write failed (a later noted time wins).
    pub fn restore(&self, taken: Vec<(SessionId, OffsetDateTime)>) {
        if let Ok(mut m) = self.pending.lock() {
            for (id, t) in taken {
                let e = m.entry(id).or_insert(t);
                if *e < t {
                    *e = t;
                }
            }
        }
    }
}

/// Writes noted last-seen times to live sessions, never moving one backwards; returns how
/// many sessions changed.
pub fn write_last_seen(
    wtx: &WriteTransaction,
    seen: &[(SessionId, OffsetDateTime)],
    now: OffsetDateTime,
) -> Result<usize> {
    let mut n = 0;
    for (id, t) in seen {
        if let Some(mut s) = get_in(wtx, *id)?
            && s.is_active(now)
            && s.last_seen_at < *t
        {
            s.last_seen_at = *t;
            kv::put(wtx, SESSION_ID_TO_SESSION, &s.id.to_bytes(), &s)?;
            n += 1;
        }
    }
    Ok(n)
}

// --- the sweep ---

/// Sessions with nothing left to do: expired, or ended more than `keep_ended` ago (a
/// recent revocation stays visible a while for whoever investigates it).
fn done(s: &Session, now: OffsetDateTime, keep_ended: time::Duration) -> bool {
    s.expires_at <= now || s.revoked_at.is_some_and(|r| r + keep_ended <= now)
}

/// Up to `limit` sessions that [`delete_done`] would delete, found in a snapshot.
pub fn find_done(
    rtx: &ReadTransaction,
    now: OffsetDateTime,
    keep_ended: time::Duration,
    limit: usize,
) -> Result<Vec<SessionId>> {
    let Some(t) = kv::open_ro(rtx, SESSION_ID_TO_SESSION)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in t.iter()? {
        let (_, v) = item?;
        let s: Session = crate::store::codec::decode(v.value())?;
        if done(&s, now, keep_ended) {
            out.push(s.id);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Deletes those of `ids` that are still done (checked again in this transaction) with
/// their row in the user's session list; returns the ids deleted. Their refresh-token
/// hashes go with [`delete_refresh_hashes`].
pub fn delete_done(
    wtx: &WriteTransaction,
    ids: &[SessionId],
    now: OffsetDateTime,
    keep_ended: time::Duration,
) -> Result<Vec<SessionId>> {
    let mut deleted = Vec::new();
    for id in ids {
        let Some(s) = get_in(wtx, *id)? else { continue };
        if !done(&s, now, keep_ended) {
            continue;
        }
        kv::delete(wtx, SESSION_ID_TO_SESSION, &id.to_bytes())?;
        wtx.open_table(USER_SESSION_TO_UNIT)?
            .remove(concat(&s.user_id.to_bytes(), &id.to_bytes()).as_slice())?;
        deleted.push(*id);
    }
    Ok(deleted)
}

/// Keys of the refresh-token hashes (current and rotated) that point at one of `gone`.
pub fn refresh_hashes_of(rtx: &ReadTransaction, gone: &HashSet<SessionId>) -> Result<Vec<Vec<u8>>> {
    let Some(t) = kv::open_ro(rtx, REFRESH_HASH_TO_SESSION_ID)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        if let Ok(b) = <[u8; 16]>::try_from(v.value())
            && gone.contains(&SessionId::from_bytes(b))
        {
            out.push(k.value().to_vec());
        }
    }
    Ok(out)
}

pub fn delete_refresh_hashes(wtx: &WriteTransaction, keys: &[Vec<u8>]) -> Result<()> {
    let mut t = wtx.open_table(REFRESH_HASH_TO_SESSION_ID)?;
    for k in keys {
        t.remove(k.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn last_seen_notes_at_most_once_a_minute_and_keeps_the_latest() {
        let seen = LastSeen::default();
        let id = SessionId::new();
        let t0 = OffsetDateTime::now_utc();
        seen.touch(id, t0, t0 + time::Duration::seconds(59));
        assert_eq!(seen.pending(id), None, "under a minute: nothing noted");
        let t1 = t0 + time::Duration::seconds(60);
        seen.touch(id, t0, t1);
        assert_eq!(seen.pending(id), Some(t1));
        // An older time never replaces a newer one, here or when a failed write returns.
        seen.touch(id, t0, t1 - time::Duration::seconds(1));
        assert_eq!(seen.pending(id), Some(t1));
        let taken = seen.take();
        assert_eq!(taken, vec![(id, t1)]);
        assert_eq!(seen.pending(id), None);
        let t2 = t1 + time::Duration::seconds(90);
        seen.touch(id, t1, t2);
        seen.restore(taken);
        assert_eq!(seen.pending(id), Some(t2));
    }
}
