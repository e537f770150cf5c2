//! The payment audit trail: every payment operation appended to a table in which each
//! entry carries an HMAC over its content and the previous entry's HMAC, so editing,
//! removing or reordering an entry breaks the chain from there on. The key lives in
//! `keys/payments-audit.key`; entries are never updated or deleted.

use crate::auth::keys::{ensure_private_dir, read_private_file, write_private_file};
use crate::auth::kv::open_ro;
use crate::error::{Error, Result};
use crate::store::codec;
use crate::store::tables::PAYMENT_AUDIT_SEQ_TO_ENTRY;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::path::Path;
use time::OffsetDateTime;

const KEY_FILE: &str = "payments-audit.key";

/// The chain's HMAC key.
pub struct AuditKey(hmac::Key);

impl AuditKey {
    /// Loads the key, creating it on a fresh install.
    pub fn load_or_create(keys_dir: &Path) -> Result<AuditKey> {
        ensure_private_dir(keys_dir)?;
        let path = keys_dir.join(KEY_FILE);
        if !path.exists() {
            let raw: [u8; 32] = rand::random();
            write_private_file(&path, URL_SAFE_NO_PAD.encode(raw).as_bytes())?;
        }
        Self::load(keys_dir)?.ok_or_else(|| Error::Internal("audit key vanished".into()))
    }

    /// Loads the key if it exists (for `souk check`, which never creates keys).
    pub fn load(keys_dir: &Path) -> Result<Option<AuditKey>> {
        let path = keys_dir.join(KEY_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = read_private_file(&path)?;
        let raw = URL_SAFE_NO_PAD
            .decode(String::from_utf8_lossy(&text).trim().as_bytes())
            .map_err(|_| Error::Internal(format!("{}: not base64url", path.display())))?;
        Ok(Some(AuditKey(hmac::Key::new(hmac::HMAC_SHA256, &raw))))
    }

    /// A keyed hash of anything else that must not be reversible (card fingerprints).
    pub fn tag(&self, label: &str, data: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(label.as_bytes());
        ctx.update(b"\0");
        ctx.update(data);
        hex::encode(ctx.sign().as_ref())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `payment.initiated`, `payment.confirmed`, `payment.captured`, `payment.failed`,
    /// `payment.refunded`, `method.added`, `method.removed`, `review.approved`, ...
    pub action: String,
    pub actor: String,
    pub payment_id: Option<String>,
    pub details: serde_json::Value,
    /// The previous entry's `mac` ("" for the first).
    pub prev: String,
    pub mac: String,
}

/// The part of the last entry the next one links to; the rest of it (its details above
/// all) is skipped rather than decoded.
#[derive(Deserialize)]
struct Link {
    mac: String,
}

fn mac_of(key: &AuditKey, e: &AuditEntry) -> Result<String> {
    let body = serde_json::to_vec(&(
        e.seq,
        crate::clock::rfc3339(e.at),
        &e.action,
        &e.actor,
        &e.payment_id,
        &e.details,
    ))?;
    let mut ctx = hmac::Context::with_key(&key.0);
    ctx.update(e.prev.as_bytes());
    ctx.update(b"\n");
    ctx.update(&body);
    Ok(hex::encode(ctx.sign().as_ref()))
}

/// Appends one entry in the caller's transaction.
pub fn append(
    tx: &WriteTransaction,
    key: &AuditKey,
    at: OffsetDateTime,
    action: &str,
    actor: &str,
    payment_id: Option<String>,
    details: serde_json::Value,
) -> Result<u64> {
    let mut t = tx.open_table(PAYMENT_AUDIT_SEQ_TO_ENTRY)?;
    let (seq, prev) = match t.last()? {
        Some((k, v)) => {
            let last: Link = codec::decode(v.value())?;
            (k.value() + 1, last.mac)
        }
        None => (1, String::new()),
    };
    let mut e = AuditEntry {
        seq,
        at,
        action: action.into(),
        actor: actor.into(),
        payment_id,
        details,
        prev,
        mac: String::new(),
    };
    e.mac = mac_of(key, &e)?;
    t.insert(seq, codec::encode(&e)?.as_slice())?;
    Ok(seq)
}

/// A page of the trail, oldest first, after sequence number `after`.
pub fn page(rtx: &ReadTransaction, after: u64, limit: usize) -> Result<(Vec<AuditEntry>, bool)> {
    let Some(t) = open_ro(rtx, PAYMENT_AUDIT_SEQ_TO_ENTRY)? else {
        return Ok((Vec::new(), false));
    };
    let mut out = Vec::new();
    for row in t.range(after.saturating_add(1)..)? {
        let (_, v) = row?;
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(codec::decode(v.value())?);
    }
    Ok((out, false))
}

/// Walks the chain; `Ok(None)` if intact, else the sequence number of the first entry
/// that does not verify (edited, missing before it, or out of order) and why.
pub fn first_broken(rtx: &ReadTransaction, key: &AuditKey) -> Result<(u64, Option<(u64, String)>)> {
    let Some(t) = open_ro(rtx, PAYMENT_AUDIT_SEQ_TO_ENTRY)? else {
        return Ok((0, None));
    };
    let mut prev = String::new();
    let mut count = 0u64;
    for (expected, row) in (1u64..).zip(t.iter()?) {
        let (k, v) = row?;
        let seq = k.value();
        count = expected;
        let e: AuditEntry = match codec::decode(v.value()) {
            Ok(e) => e,
            Err(_) => return Ok((count, Some((seq, "unreadable".into())))),
        };
        if seq != expected {
            return Ok((count, Some((seq, format!("entry {expected} is missing")))));
        }
        if e.seq != seq {
            return Ok((count, Some((seq, "sequence number altered".into()))));
        }
        if e.prev != prev {
            return Ok((
                count,
                Some((seq, "does not link to the entry before it".into())),
            ));
        }
        let want = mac_of(key, &e)?;
        let ok: bool = subtle::ConstantTimeEq::ct_eq(want.as_bytes(), e.mac.as_bytes()).into();
        if !ok {
            return Ok((
                count,
                Some((seq, "its HMAC does not match its content".into())),
            ));
        }
        prev = e.mac;
    }
    Ok((count, None))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    #[test]
    fn the_chain_names_the_first_edited_entry() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::load_or_create(&dir.path().join("keys")).unwrap();
        let db = redb::Database::create(dir.path().join("a.redb")).unwrap();
        let now = OffsetDateTime::now_utc();
        let tx = db.begin_write().unwrap();
        for i in 0..5 {
            append(
                &tx,
                &key,
                now,
                "payment.initiated",
                "user:x",
                None,
                serde_json::json!({"i": i}),
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let (n, broken) = first_broken(&db.begin_read().unwrap(), &key).unwrap();
        assert_eq!((n, broken), (5, None));
        // Edit entry 3's details, keeping its stored mac.
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(PAYMENT_AUDIT_SEQ_TO_ENTRY).unwrap();
            let mut e: AuditEntry = codec::decode(t.get(3).unwrap().unwrap().value()).unwrap();
            e.details = serde_json::json!({"i": 99});
            t.insert(3, codec::encode(&e).unwrap().as_slice()).unwrap();
        }
        tx.commit().unwrap();
        let (_, broken) = first_broken(&db.begin_read().unwrap(), &key).unwrap();
        assert_eq!(broken.unwrap().0, 3);
        // A different key does not verify even the untouched first entry.
        let other = AuditKey::load_or_create(&dir.path().join("other")).unwrap();
        let (_, broken) = first_broken(&db.begin_read().unwrap(), &other).unwrap();
        assert_eq!(broken.unwrap().0, 1);
    }
}
