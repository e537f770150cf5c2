//! Key files under `<data_dir>/keys/` (directory 0700, files 0600) and the JWT signing key
//! ring built from them. Other modules that keep secrets on disk (field encryption, TLS)
//! reuse `ensure_private_dir` / `write_private_file`. Never logs or returns key material.

use crate::config::Config;
use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Creates `dir` (and parents) and makes it readable by the owner only.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    set_mode(dir, 0o700)
}

/// Writes `bytes` to `path` atomically (temp file + rename) with mode 0600, so a crash never
/// leaves a half-written key and the key is never readable by others, not even briefly.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Internal(format!("{} has no parent directory", path.display())))?;
    ensure_private_dir(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| io_error(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
        f.sync_all().map_err(|e| io_error(&tmp, e))?;
    }
    set_mode(&tmp, 0o600)?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
    Ok(())
}

pub fn read_private_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_error(path, e))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("{}: {e}", path.display()))
}

/// One Ed25519 signing key as stored in `keys/jwt-<kid>.json`.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    kid: String,
    alg: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// The 32-byte Ed25519 seed, base64url.
    seed: String,
}

/// A verification key, kept for as long as tokens it signed may still be alive.
pub struct VerifyKey {
    pub created_at: OffsetDateTime,
    pub decoding: DecodingKey,
}

/// Every JWT key known: the newest signs, all verify.
pub struct KeyRing {
    pub current_kid: String,
    pub signing: EncodingKey,
    pub verify: HashMap<String, VerifyKey>,
}

const JWT_PREFIX: &str = "jwt-";

fn jwt_key_path(dir: &Path, kid: &str) -> PathBuf {
    dir.join(format!("{JWT_PREFIX}{kid}.json"))
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410), which is what jsonwebtoken signs with.
fn pkcs8_from_seed(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

fn new_key_file(now: OffsetDateTime) -> KeyFile {
    let seed: [u8; 32] = rand::random();
    KeyFile {
        // UUIDv7: sorts by creation time, which is how the newest key is found.
        kid: uuid::Uuid::now_v7().simple().to_string(),
        alg: "EdDSA".into(),
        created_at: now,
        seed: URL_SAFE_NO_PAD.encode(seed),
    }
}

fn write_key_file(dir: &Path, k: &KeyFile) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(k)?;
    write_private_file(&jwt_key_path(dir, &k.kid), &bytes)
}

/// Loads every `jwt-*.json` in `dir`, creating the first key on a fresh install.
pub fn load_key_ring(dir: &Path, now: OffsetDateTime) -> Result<KeyRing> {
    ensure_private_dir(dir)?;
    let mut files = read_key_files(dir)?;
    if files.is_empty() {
        let k = new_key_file(now);
        write_key_file(dir, &k)?;
        files.push(k);
    }
    files.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
    let mut verify = HashMap::new();
    let mut signing = None;
    let mut current_kid = String::new();
    for f in &files {
        let seed = decode_seed(f)?;
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = sk.verifying_key().to_bytes();
        verify.insert(
            f.kid.clone(),
            VerifyKey {
                created_at: f.created_at,
                decoding: DecodingKey::from_ed_der(&public),
            },
        );
        signing = Some(EncodingKey::from_ed_der(&pkcs8_from_seed(&seed)));
        current_kid = f.kid.clone();
    }
    let signing = signing.ok_or_else(|| Error::Internal("no JWT signing key".into()))?;
    Ok(KeyRing {
        current_kid,
        signing,
        verify,
    })
}

fn decode_seed(f: &KeyFile) -> Result<[u8; 32]> {
    if f.alg != "EdDSA" {
        return Err(Error::Internal(format!(
            "JWT key {}: unsupported alg {}",
            f.kid, f.alg
        )));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(f.seed.as_bytes())
        .map_err(|_| Error::Internal(format!("JWT key {}: seed is not base64url", f.kid)))?;
    bytes
        .try_into()
        .map_err(|_| Error::Internal(format!("JWT key {}: seed must be 32 bytes", f.kid)))
}

fn read_key_files(dir: &Path) -> Result<Vec<KeyFile>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !(name.starts_with(JWT_PREFIX) && name.ends_with(".json")) {
            continue;
        }
        let bytes = read_private_file(&entry.path())?;
        let k: KeyFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("{}: {e}", entry.path().display())))?;
        out.push(k);
    }
    Ok(out)
}

/// Adds a new signing key (the one `souk keys rotate` runs) and returns its kid. Older keys
/// stay for verification until no token they signed can still be alive: a key is removed
/// once a newer key has been signing for longer than the access-token lifetime.
/// A running server picks the new key up at its next start or `AuthState::reload_keys`.
pub fn rotate_keys(config: &Config) -> Result<String> {
    rotate_keys_at(config, OffsetDateTime::now_utc())
}

pub fn rotate_keys_at(config: &Config, now: OffsetDateTime) -> Result<String> {
    let dir = config.keys_dir();
    ensure_private_dir(&dir)?;
    let mut files = read_key_files(&dir)?;
    files.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
    let keep_after = now - time::Duration::seconds(config.auth.access_token_ttl_secs as i64 + 60);
    // files[i] stopped signing when files[i+1] was created.
    for pair in files.windows(2) {
        if pair[1].created_at < keep_after {
            let p = jwt_key_path(&dir, &pair[0].kid);
            std::fs::remove_file(&p).map_err(|e| io_error(&p, e))?;
        }
    }
    let k = new_key_file(now);
    write_key_file(&dir, &k)?;
    Ok(k.kid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_rotation_keeps_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let now = OffsetDateTime::now_utc();
        let ring = load_key_ring(&config.keys_dir(), now).unwrap();
        assert_eq!(ring.verify.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(config.keys_dir())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
            let f = jwt_key_path(&config.keys_dir(), &ring.current_kid);
            let mode = std::fs::metadata(f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let kid = rotate_keys_at(&config, now + time::Duration::seconds(5)).unwrap();
        let ring2 = load_key_ring(&config.keys_dir(), now).unwrap();
        assert_eq!(ring2.current_kid, kid);
        assert!(ring2.verify.contains_key(&ring.current_kid));
        // Long after, rotating again drops the first key, whose tokens are all expired.
        rotate_keys_at(&config, now + time::Duration::hours(2)).unwrap();
        let ring3 = load_key_ring(&config.keys_dir(), now).unwrap();
        assert_eq!(ring3.verify.len(), 2);
        assert!(!ring3.verify.contains_key(&ring.current_kid));
    }
}
