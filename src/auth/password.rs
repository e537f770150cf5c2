//! Passwords: the acceptance policy and argon2id hashing. Hashing runs on the blocking pool
//! behind a semaphore so a login flood cannot starve the async workers or the memory.
//! Never logs, returns or stores a password; only its PHC hash leaves this module.

use crate::config::AuthConfig;
use crate::error::{Error, FieldError, Result};
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 1024;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// Checks a new password against the policy; `field` names it in the error.
pub fn check_policy(field: &str, password: &str, email: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(FieldError::new(
            field,
            "password_too_short",
            format!("must be at least {MIN_LEN} characters"),
        ));
    }
    if chars > MAX_LEN {
        return Err(FieldError::new(
            field,
            "password_too_long",
            format!("must be at most {MAX_LEN} characters"),
        ));
    }
    let lower = password.to_lowercase();
    if lower == email.trim().to_lowercase() {
        return Err(FieldError::new(
            field,
            "password_is_email",
            "must not be your email address",
        ));
    }
    if COMMON.contains(lower.as_str()) {
        return Err(FieldError::new(
            field,
            "password_too_common",
            "is one of the most common passwords; choose another",
        ));
    }
    Ok(())
}

/// argon2id with bounded concurrency.
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the account does not exist,
    /// so an unknown email costs the same time as a wrong password.
    dummy: String,
}

impl Hasher {
    pub fn new(cfg: &AuthConfig) -> Result<Hasher> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let dummy_pw: [u8; 16] = rand::random();
        let dummy = hash_with(&params, &dummy_pw)?;
        Ok(Hasher {
            params,
            permits: Arc::new(Semaphore::new(cfg.max_concurrent_hashes.max(1))),
            dummy,
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params.clone();
        let pw = password.as_bytes().to_vec();
        self.blocking(move || hash_with(&params, &pw)).await?
    }

    /// True if `password` matches `phc`. With `None` (no such account) it still runs one
    /// verification, against the dummy hash, and answers false.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool> {
        let known = phc.is_some();
        let phc = phc.unwrap_or(&self.dummy).to_string();
        let pw = password.as_bytes().to_vec();
        let ok = self.blocking(move || verify_with(&pw, &phc)).await??;
        Ok(ok && known)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::Internal(format!("password hashing task: {e}")))
    }
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

fn verify_with(password: &[u8], phc: &str) -> Result<bool> {
    // The parameters come from the stored hash, so raising the defaults later still
    // verifies old hashes.
    match Argon2::default().verify_password(password, phc) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(Error::Internal(format!(
            "stored password hash unusable: {e}"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let e = "ada@example.com";
        assert_eq!(
            check_policy("p", "short", e).unwrap_err().code,
            "password_too_short"
        );
        // Ten characters, counted as characters rather than bytes.
        assert!(check_policy("p", "éééééééééé", e).is_ok());
        assert_eq!(
            check_policy("p", "ééééééééé", e).unwrap_err().code,
            "password_too_short"
        );
        let long = "x".repeat(MAX_LEN + 1);
        assert_eq!(
            check_policy("p", &long, e).unwrap_err().code,
            "password_too_long"
        );
        assert!(check_policy("p", &"xk".repeat(MAX_LEN / 2), e).is_ok());
        assert_eq!(
            check_policy("p", "ADA@example.com", e).unwrap_err().code,
            "password_is_email"
        );
        assert_eq!(
            check_policy("p", "Password123", e).unwrap_err().code,
            "password_too_common"
        );
        assert_eq!(
            check_policy("p", "1234567890", e).unwrap_err().code,
            "password_too_common"
        );
        assert!(check_policy("p", "correct horse battery", e).is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let cfg = AuthConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..AuthConfig::default()
        };
        let h = Hasher::new(&cfg).unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("correct"));
        assert!(h.verify("correct horse battery", Some(&phc)).await.unwrap());
        assert!(!h.verify("wrong horse battery", Some(&phc)).await.unwrap());
        assert!(!h.verify("correct horse battery", None).await.unwrap());
    }
}
