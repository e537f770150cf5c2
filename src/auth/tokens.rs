//! Access tokens (EdDSA JWTs with a `kid`) and opaque random tokens (refresh, reset, API
//! keys), which are stored only as SHA-256 hashes. Time comes from the caller (the app
//! clock), never from the system, so tests can expire tokens. Never logs a token.

use super::keys::KeyRing;
use super::{Role, SessionId, UserId, VendorId};
use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub sid: SessionId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vid: Option<VendorId>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Signs `claims` with the ring's current key.
pub fn sign(ring: &KeyRing, claims: &Claims) -> Result<String> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(ring.current_kid.clone());
    jsonwebtoken::encode(&header, claims, &ring.signing)
        .map_err(|e| Error::Internal(format!("jwt: {e}")))
}

/// Verifies signature, algorithm, key id, issuer, audience and the time window at `now`.
/// Every failure is the same 401 to the caller; the reason is only for logs and tests.
pub fn verify(
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    audience: &str,
    now: OffsetDateTime,
) -> Result<Claims, &'static str> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed")?;
    // Checked before any key is touched: `none`, HS* and RS* tokens never reach a verifier.
    if header.alg != Algorithm::EdDSA {
        return Err("algorithm");
    }
    let kid = header.kid.ok_or("no kid")?;
    let key = ring.verify.get(&kid).ok_or("unknown kid")?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    // The library reads the system clock; we check time ourselves against the app clock.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidIssuer => "issuer",
            ErrorKind::InvalidAudience => "audience",
            ErrorKind::InvalidSignature => "signature",
            ErrorKind::InvalidAlgorithm => "algorithm",
            _ => "invalid",
        }
    })?;
    let c = data.claims;
    check_window(&c, now)?;
    Ok(c)
}

/// The time checks alone: not expired, not before its `nbf`.
pub fn check_window(c: &Claims, now: OffsetDateTime) -> Result<(), &'static str> {
    let t = now.unix_timestamp();
    if c.exp <= t {
        return Err("expired");
    }
    if c.nbf > t {
        return Err("not yet valid");
    }
    Ok(())
}

/// Tokens whose signature and claims were already verified, by SHA-256 of the whole token.
/// A client sends the same access token for up to 15 minutes; checking its Ed25519
/// signature once instead of on every request is most of the cost of authentication.
/// Only byte-identical tokens hit, so a hit proves what a full verification would; the
/// time window is still checked on every use. Bounded: expired entries go first, and
/// past the bound the cache starts over (a miss only costs a full verification).
#[derive(Default)]
pub struct VerifiedCache {
    map: std::sync::RwLock<std::collections::HashMap<[u8; 32], Claims>>,
}

const CACHE_MAX: usize = 100_000;

impl VerifiedCache {
    pub fn get(&self, hash: &[u8; 32]) -> Option<Claims> {
        self.map.read().ok()?.get(hash).cloned()
    }

    pub fn insert(&self, hash: [u8; 32], c: &Claims, now: OffsetDateTime) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= CACHE_MAX {
            let t = now.unix_timestamp();
            map.retain(|_, c| c.exp > t);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(hash, c.clone());
    }
}

/// 256 random bits, base64url, with a short prefix saying what the token is for.
pub fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored in place of a random token: a lookup key that cannot be reversed. A plain
/// SHA-256 suffices because the token carries 256 bits of entropy (no dictionary to try).
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::auth::keys::load_key_ring;

    fn claims(now: OffsetDateTime) -> Claims {
        Claims {
            iss: "souk".into(),
            aud: "souk-api".into(),
            sub: UserId::new(),
            sid: SessionId::new(),
            role: Role::Customer,
            vid: None,
            iat: now.unix_timestamp(),
            nbf: now.unix_timestamp(),
            exp: now.unix_timestamp() + 900,
        }
    }

    fn forge(header: &str, payload: &str, sig: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            sig
        )
    }

    #[test]
    fn accepts_good_and_refuses_every_bad_token() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let ring = load_key_ring(dir.path(), now).unwrap();
        let c = claims(now);
        let t = sign(&ring, &c).unwrap();
        assert_eq!(verify(&ring, &t, "souk", "souk-api", now).unwrap(), c);

        assert_eq!(verify(&ring, &t, "other", "souk-api", now), Err("issuer"));
        assert_eq!(verify(&ring, &t, "souk", "other", now), Err("audience"));
        let later = now + time::Duration::seconds(900);
        assert_eq!(verify(&ring, &t, "souk", "souk-api", later), Err("expired"));
        let mut early = claims(now);
        early.nbf = now.unix_timestamp() + 60;
        let t2 = sign(&ring, &early).unwrap();
        assert_eq!(
            verify(&ring, &t2, "souk", "souk-api", now),
            Err("not yet valid")
        );

        // A token signed by another key ring with the same kid fails the signature.
        let other_dir = tempfile::tempdir().unwrap();
        let mut other = load_key_ring(other_dir.path(), now).unwrap();
        other.current_kid = ring.current_kid.clone();
        let t3 = sign(&other, &c).unwrap();
        assert_eq!(
            verify(&ring, &t3, "souk", "souk-api", now),
            Err("signature")
        );

        // Tampered payload.
        let parts: Vec<&str> = t.split('.').collect();
        let mut evil = c.clone();
        evil.role = Role::Admin;
        let evil_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], evil_payload, parts[2]);
        assert_eq!(
            verify(&ring, &tampered, "souk", "souk-api", now),
            Err("signature")
        );

        let payload = String::from_utf8(serde_json::to_vec(&evil).unwrap()).unwrap();
        let kid = &ring.current_kid;
        let none = forge(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#), &payload, "");
        assert!(verify(&ring, &none, "souk", "souk-api", now).is_err());
        let hs = forge(
            &format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#),
            &payload,
            "AAAA",
        );
        assert_eq!(
            verify(&ring, &hs, "souk", "souk-api", now),
            Err("algorithm")
        );
        let rs = forge(
            &format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#),
            &payload,
            "AAAA",
        );
        assert_eq!(
            verify(&ring, &rs, "souk", "souk-api", now),
            Err("algorithm")
        );
        let unknown = forge(r#"{"alg":"EdDSA","kid":"nope"}"#, &payload, "AAAA");
        assert_eq!(
            verify(&ring, &unknown, "souk", "souk-api", now),
            Err("unknown kid")
        );
        assert_eq!(
            verify(&ring, "garbage", "souk", "souk-api", now),
            Err("malformed")
        );
    }

    #[test]
    fn random_tokens_differ_and_hash_stably() {
        let a = random_token("rt_");
        let b = random_token("rt_");
        assert_ne!(a, b);
        assert!(a.starts_with("rt_") && a.len() == 3 + 43);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
