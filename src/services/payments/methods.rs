//! Saved payment methods and the field encryption that protects them at rest: a gateway
//! token, brand, last four digits, expiry and a fingerprint; token and fingerprint sealed
//! with AES-256-GCM, the record id bound as associated data and a key id per record so
//! keys can rotate (`souk keys rotate`). A card number never reaches this module.

use super::model::{CardSummary, PaymentMethodId};
use crate::auth::UserId;
use crate::auth::keys::{ensure_private_dir, read_private_file, write_private_file};
use crate::auth::kv::open_ro;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::codec;
use crate::store::tables::{PAYMENT_METHOD_ID_TO_METHOD, USER_PAYMENT_METHOD_TO_UNIT};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use time::OffsetDateTime;

const FIELD_PREFIX: &str = "field-";

/// One sealed value: which key, the nonce, and ciphertext with its tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub kid: String,
    pub nonce: String,
    pub ct: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed(kid={})", self.kid)
    }
}

#[derive(Serialize, Deserialize)]
struct FieldKeyFile {
    kid: String,
    alg: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    key: String,
}

/// Every field-encryption key known: the newest seals, all open.
pub struct FieldKeys {
    current: String,
    keys: HashMap<String, LessSafeKey>,
}

impl FieldKeys {
    /// Loads `keys/field-*.json`, creating the first key on a fresh install.
    pub fn load(dir: &Path, now: OffsetDateTime) -> Result<FieldKeys> {
        ensure_private_dir(dir)?;
        let mut files = read_field_keys(dir)?;
        if files.is_empty() {
            let k = new_field_key(now);
            write_field_key(dir, &k)?;
            files.push(k);
        }
        files.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        let mut keys = HashMap::new();
        let mut current = String::new();
        for f in files {
            if f.alg != "A256GCM" {
                return Err(Error::Internal(format!(
                    "field key {}: unsupported alg {}",
                    f.kid, f.alg
                )));
            }
            let raw = URL_SAFE_NO_PAD
                .decode(f.key.as_bytes())
                .map_err(|_| Error::Internal(format!("field key {}: not base64url", f.kid)))?;
            let unbound = UnboundKey::new(&AES_256_GCM, &raw)
                .map_err(|_| Error::Internal(format!("field key {}: must be 32 bytes", f.kid)))?;
            keys.insert(f.kid.clone(), LessSafeKey::new(unbound));
            current = f.kid;
        }
        Ok(FieldKeys { current, keys })
    }

    pub fn current_kid(&self) -> &str {
        &self.current
    }

    /// Seals `plain` for the record `record_id`'s field `field`; it opens only for the
    /// same record and field.
    pub fn seal(&self, record_id: &[u8], field: &str, plain: &[u8]) -> Result<Sealed> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| Error::Internal("no field encryption key".into()))?;
        let nonce: [u8; 12] = rand::random();
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(record_id, field)),
            &mut buf,
        )
        .map_err(|_| Error::Internal("sealing failed".into()))?;
        Ok(Sealed {
            kid: self.current.clone(),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ct: URL_SAFE_NO_PAD.encode(buf),
        })
    }

    /// Opens a sealed value; an error if it was tampered with, moved to another record or
    /// field, or sealed with a key this install no longer has.
    pub fn open(&self, record_id: &[u8], field: &str, sealed: &Sealed) -> Result<Vec<u8>> {
        let key = self.keys.get(&sealed.kid).ok_or_else(|| {
            Error::Internal(format!("field key {} is missing from keys/", sealed.kid))
        })?;
        let nonce: [u8; 12] = URL_SAFE_NO_PAD
            .decode(sealed.nonce.as_bytes())
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| Error::Storage("sealed field: bad nonce".into()))?;
        let mut buf = URL_SAFE_NO_PAD
            .decode(sealed.ct.as_bytes())
            .map_err(|_| Error::Storage("sealed field: bad ciphertext".into()))?;
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(record_id, field)),
                &mut buf,
            )
            .map_err(|_| {
                Error::Storage("sealed field does not verify (tampered or moved)".into())
            })?;
        Ok(plain.to_vec())
    }
}

fn aad(record_id: &[u8], field: &str) -> Vec<u8> {
    let mut a = record_id.to_vec();
    a.push(0);
    a.extend_from_slice(field.as_bytes());
    a
}

fn new_field_key(now: OffsetDateTime) -> FieldKeyFile {
    let key: [u8; 32] = rand::random();
    FieldKeyFile {
        kid: uuid::Uuid::now_v7().simple().to_string(),
        alg: "A256GCM".into(),
        created_at: now,
        key: URL_SAFE_NO_PAD.encode(key),
    }
}

fn write_field_key(dir: &Path, k: &FieldKeyFile) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(k)?;
    write_private_file(&dir.join(format!("{FIELD_PREFIX}{}.json", k.kid)), &bytes)
}

fn read_field_keys(dir: &Path) -> Result<Vec<FieldKeyFile>> {
    let mut out = Vec::new();
    let rd =
        std::fs::read_dir(dir).map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !(name.starts_with(FIELD_PREFIX) && name.ends_with(".json")) {
            continue;
        }
        let bytes = read_private_file(&entry.path())?;
        out.push(
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::Internal(format!("{}: {e}", entry.path().display())))?,
        );
    }
    Ok(out)
}

/// Adds a new field-encryption key (what `souk keys rotate` runs) and returns its id.
/// Records sealed with older keys keep opening (their key id says which key); new
/// records use the new key from the next start on. Old keys are never deleted here,
/// since stored records still need them.
pub fn rotate_field_key(config: &Config) -> Result<String> {
    let dir = config.keys_dir();
    ensure_private_dir(&dir)?;
    let k = new_field_key(OffsetDateTime::now_utc());
    write_field_key(&dir, &k)?;
    Ok(k.kid)
}

/// A saved method as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedMethod {
    pub id: PaymentMethodId,
    pub user_id: UserId,
    pub card: CardSummary,
    pub gateway: String,
    pub token: Sealed,
    pub fingerprint: Sealed,
    #[serde(default)]
    pub test_mode: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What the API shows of a saved method.
#[derive(Debug, Clone, Serialize)]
pub struct MethodView {
    pub id: PaymentMethodId,
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
    pub test_mode: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&SavedMethod> for MethodView {
    fn from(m: &SavedMethod) -> Self {
        MethodView {
            id: m.id,
            brand: m.card.brand.clone(),
            last4: m.card.last4.clone(),
            exp_month: m.card.exp_month,
            exp_year: m.card.exp_year,
            test_mode: m.test_mode,
            created_at: m.created_at,
        }
    }
}

fn user_key(user: UserId, id: PaymentMethodId) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&user.to_bytes());
    k[16..].copy_from_slice(&id.to_bytes());
    k
}

pub fn put(tx: &WriteTransaction, m: &SavedMethod) -> Result<()> {
    tx.open_table(PAYMENT_METHOD_ID_TO_METHOD)?
        .insert(m.id.to_bytes().as_slice(), codec::encode(m)?.as_slice())?;
    tx.open_table(USER_PAYMENT_METHOD_TO_UNIT)?
        .insert(user_key(m.user_id, m.id).as_slice(), ())?;
    Ok(())
}

pub fn remove(tx: &WriteTransaction, m: &SavedMethod) -> Result<()> {
    tx.open_table(PAYMENT_METHOD_ID_TO_METHOD)?
        .remove(m.id.to_bytes().as_slice())?;
    tx.open_table(USER_PAYMENT_METHOD_TO_UNIT)?
        .remove(user_key(m.user_id, m.id).as_slice())?;
    Ok(())
}

pub fn get(rtx: &ReadTransaction, id: PaymentMethodId) -> Result<Option<SavedMethod>> {
    let Some(t) = open_ro(rtx, PAYMENT_METHOD_ID_TO_METHOD)? else {
        return Ok(None);
    };
    t.get(id.to_bytes().as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}

pub fn get_in(tx: &WriteTransaction, id: PaymentMethodId) -> Result<Option<SavedMethod>> {
    tx.open_table(PAYMENT_METHOD_ID_TO_METHOD)?
        .get(id.to_bytes().as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}

pub fn of_user(rtx: &ReadTransaction, user: UserId) -> Result<Vec<SavedMethod>> {
    let Some(idx) = open_ro(rtx, USER_PAYMENT_METHOD_TO_UNIT)? else {
        return Ok(Vec::new());
    };
    let lo = user_key(user, PaymentMethodId(uuid::Uuid::nil()));
    let hi = user_key(user, PaymentMethodId(uuid::Uuid::max()));
    let mut out = Vec::new();
    for row in idx.range(lo.as_slice()..=hi.as_slice())? {
        let (k, _) = row?;
        let id: [u8; 16] = k.value()[16..]
            .try_into()
            .map_err(|_| Error::Storage("corrupt method index".into()))?;
        if let Some(m) = get(rtx, PaymentMethodId::from_bytes(id))? {
            out.push(m);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_binds_record_and_field_and_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let now = OffsetDateTime::now_utc();
        let keys = FieldKeys::load(&config.keys_dir(), now).unwrap();
        let id = PaymentMethodId::new().to_bytes();
        let s = keys.seal(&id, "token", b"tok_test_abc").unwrap();
        assert_eq!(keys.open(&id, "token", &s).unwrap(), b"tok_test_abc");
        // Another record, another field: refused.
        let other = PaymentMethodId::new().to_bytes();
        assert!(keys.open(&other, "token", &s).is_err());
        assert!(keys.open(&id, "fingerprint", &s).is_err());
        // One flipped ciphertext bit: refused.
        let mut ct = URL_SAFE_NO_PAD.decode(&s.ct).unwrap();
        ct[0] ^= 1;
        let bad = Sealed {
            ct: URL_SAFE_NO_PAD.encode(ct),
            ..s.clone()
        };
        assert!(keys.open(&id, "token", &bad).is_err());
        // After rotation new seals use the new key, old ones still open.
        let new_kid = rotate_field_key(&config).unwrap();
        let keys2 = FieldKeys::load(&config.keys_dir(), now).unwrap();
        assert_eq!(keys2.current_kid(), new_kid);
        assert_eq!(keys2.open(&id, "token", &s).unwrap(), b"tok_test_abc");
        let s2 = keys2.seal(&id, "token", b"x").unwrap();
        assert_eq!(s2.kid, new_kid);
        assert_ne!(s2.kid, s.kid);
    }
}
