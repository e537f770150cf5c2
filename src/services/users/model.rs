//! The user service's types: the stored user record, the email newtype that validates on
//! parse, and the views shown through the API (which never carry a hash or a secret).

use crate::auth::{Role, UserId, VendorId};
use crate::error::{Error, FieldError, Result};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A normalised email address: trimmed, domain lower-cased, and compared case-insensitively
/// (the uniqueness key lower-cases the local part as well; the display form keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Email, FieldError> {
        let bad = |m: &str| FieldError::new(field, "invalid_email", m.to_string());
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new(field, "required", "is required"));
        }
        if s.len() > 254 {
            return Err(bad("is longer than 254 characters"));
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| bad("must look like name@example.com"))?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(bad("must look like name@example.com"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(bad("has misplaced dots before the @"));
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if !local_ok {
            return Err(bad("has characters not allowed before the @"));
        }
        let domain = domain.to_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return Err(bad("has an invalid domain"));
        }
        Ok(Email(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: the whole address lower-cased.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    /// Locked by an admin: no login, every session and key revoked.
    Locked,
    /// Deleted by its owner: personal data anonymised, the id kept for orders and payments.
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default)]
    pub label: Option<String>,
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default)]
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. "FR".
    pub country: String,
}

/// MFA state: a pending secret while setting up, then the enabled secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Mfa {
    #[serde(default)]
    pub pending_secret: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    /// The last TOTP step accepted; a code for it or an earlier one is refused.
    #[serde(default)]
    pub last_step: Option<u64>,
    /// Hex SHA-256 of the recovery codes not used yet.
    #[serde(default)]
    pub recovery_hashes: Vec<String>,
}

impl Mfa {
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    #[serde(default)]
    pub email_verified: bool,
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    #[serde(default)]
    pub vendor_id: Option<VendorId>,
    pub status: UserStatus,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub marketing_consent: bool,
    #[serde(default)]
    pub mfa: Mfa,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub role: Role,
    pub vendor_id: Option<VendorId>,
    pub status: UserStatus,
    pub phone: Option<String>,
    pub addresses: Vec<Address>,
    pub locale: Option<String>,
    pub marketing_consent: bool,
    pub mfa_enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            email: u.email.to_string(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            role: u.role,
            vendor_id: u.vendor_id,
            status: u.status,
            phone: u.phone.clone(),
            addresses: u.addresses.clone(),
            locale: u.locale.clone(),
            marketing_consent: u.marketing_consent,
            mfa_enabled: u.mfa.enabled(),
            created_at: crate::clock::rfc3339(u.created_at),
            updated_at: crate::clock::rfc3339(u.updated_at),
        }
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
pub fn parse_name(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(FieldError::new(field, "required", "is required"));
    }
    if s.chars().count() > 100 {
        return Err(FieldError::new(
            field,
            "too_long",
            "must be at most 100 characters",
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "invalid",
            "must not contain control characters",
        ));
    }
    Ok(s.to_string())
}

/// Collects field errors; `finish` turns any into one 422.
#[derive(Default)]
pub struct Checks(pub Vec<FieldError>);

impl Checks {
    pub fn take<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.0))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn email_normalisation() {
        let e = Email::parse("email", "  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@example.com");
        assert_eq!(e.key(), "ada.lovelace@example.com");
        assert_eq!(
            Email::parse("email", "a+tag@sub.example.org")
                .unwrap()
                .as_str(),
            "a+tag@sub.example.org"
        );
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a..b@example.com",
            ".a@example.com",
            "a@-x.com",
            "a b@example.com",
            "a@exa mple.com",
            "a@@example.com",
            "a@example..com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse("email", &long).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("n", "  Ada ").unwrap(), "Ada");
        assert_eq!(parse_name("n", "  ").unwrap_err().code, "required");
        assert_eq!(
            parse_name("n", &"x".repeat(101)).unwrap_err().code,
            "too_long"
        );
        assert_eq!(parse_name("n", "a\u{0}b").unwrap_err().code, "invalid");
    }
}
