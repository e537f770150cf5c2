//! TOTP (RFC 6238: SHA-1, 30 s steps, 6 digits, one step of skew) and recovery codes.
//! A code is accepted only for a step later than the last one used, so a code seen over a
//! shoulder cannot be replayed. Recovery codes are stored hashed and used once.

use super::tokens::token_hash;
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const STEP_SECS: u64 = 30;
pub const RECOVERY_CODES: usize = 10;

/// A new 160-bit secret (RFC 4226 recommends 160 bits).
pub fn new_secret() -> Vec<u8> {
    let s: [u8; 20] = rand::random();
    s.to_vec()
}

pub fn secret_base32(secret: &[u8]) -> String {
    Secret::new(secret.to_vec().into_boxed_slice()).to_base32()
}

fn totp(secret: &[u8]) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .build()
        .ok()
}

/// The otpauth:// URI an authenticator app scans.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    format!(
        "otpauth://totp/{issuer_e}:{account_e}?secret={secret}&issuer={issuer_e}&algorithm=SHA1&digits=6&period={STEP_SECS}",
        issuer_e = percent(issuer),
        account_e = percent(account),
        secret = secret_base32(secret),
    )
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The step `code` matches at `unix_secs` (±1 step), if any and if later than `last_step`.
pub fn check(secret: &[u8], code: &str, unix_secs: u64, last_step: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = totp(secret)?.check(code, unix_secs)?;
    match last_step {
        Some(last) if step <= last => None,
        _ => Some(step),
    }
}

/// The code for `unix_secs`; the server only needs it in tests and benches.
pub fn code_at(secret: &[u8], unix_secs: u64) -> Option<String> {
    Some(totp(secret)?.generate(unix_secs).to_string())
}

/// Ten fresh recovery codes (shown once) and their hashes (stored).
pub fn new_recovery_codes() -> (Vec<String>, Vec<[u8; 32]>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let raw: [u8; 10] = rand::random();
        let s: String = raw
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        codes.push(format!("{}-{}", &s[..5], &s[5..]));
    }
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    (codes, hashes)
}

/// Recovery codes are compared ignoring case, spaces and the dash.
pub fn recovery_hash(code: &str) -> [u8; 32] {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    token_hash(&format!("recovery:{norm}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 → 94287082 (8
        // digits); the 6-digit code is its last six digits.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59).unwrap(), "287082");
        assert_eq!(code_at(secret, 1111111109).unwrap(), "081804");
    }

    #[test]
    fn skew_and_replay() {
        let s = new_secret();
        let t = 1_000_000_000u64;
        let code = code_at(&s, t).unwrap();
        let step = check(&s, &code, t, None).unwrap();
        assert_eq!(step, t / STEP_SECS);
        assert!(check(&s, &code, t + STEP_SECS, None).is_some());
        assert!(check(&s, &code, t - STEP_SECS, None).is_some());
        assert!(check(&s, &code, t + 3 * STEP_SECS, None).is_none());
        assert!(check(&s, &code, t, Some(step)).is_none(), "replay refused");
        assert!(check(&s, "12345", t, None).is_none());
        assert!(check(&s, "abcdef", t, None).is_none());
    }

    #[test]
    fn recovery_codes_normalise() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(
            recovery_hash(&codes[0].to_uppercase().replace('-', " ")),
            hashes[0]
        );
        assert!(
            otpauth_uri(&new_secret(), "Souk", "a b@x.io")
                .starts_with("otpauth://totp/Souk:a%20b@x.io?secret=")
        );
    }
}
