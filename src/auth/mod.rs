//! Who is calling: passwords, access and refresh tokens, sessions, TOTP, API keys, the
//! `Principal` extractors and role checks. Services trust what this module decides; it
//! never answers a business question (what a vendor may sell) and never logs a secret.

pub mod api_keys;
pub mod client;
pub mod keys;
pub mod kv;
pub mod password;
pub mod principal;
pub mod session;
pub mod throttle;
pub mod tokens;
pub mod totp;

pub use client::ClientInfo;
pub use keys::rotate_keys;
pub use principal::{Admin, MaybePrincipal, Principal, VendorUser};

use crate::config::{AuthConfig, Config};
use crate::error::{Error, Result};
use keys::KeyRing;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use throttle::{Policy, Throttle};
use time::OffsetDateTime;

crate::id_type!(
    /// A user account.
    UserId
);
crate::id_type!(
    /// A vendor (a shop selling on the marketplace).
    VendorId
);
crate::id_type!(
    /// One login: the refresh-token family and the access tokens minted from it.
    SessionId
);
crate::id_type!(
    /// An API key.
    ApiKeyId
);

/// The three roles. A vendor user is bound to exactly one vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Vendor,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Vendor => "vendor",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything authentication needs at run time; one per process, in `AppState`.
pub struct AuthState {
    ring: RwLock<Arc<KeyRing>>,
    keys_dir: PathBuf,
    pub hasher: password::Hasher,
    pub throttle: Throttle,
    /// Sessions' last-seen times noted by requests, written in batches by the sweep.
    pub last_seen: session::LastSeen,
    pub config: AuthConfig,
    verified: tokens::VerifiedCache,
}

impl AuthState {
    pub fn new(config: &Config, now: OffsetDateTime) -> Result<AuthState> {
        let keys_dir = config.keys_dir();
        let ring = keys::load_key_ring(&keys_dir, now)?;
        Ok(AuthState {
            ring: RwLock::new(Arc::new(ring)),
            keys_dir,
            hasher: password::Hasher::new(&config.auth)?,
            throttle: Throttle::default(),
            last_seen: session::LastSeen::default(),
            config: config.auth.clone(),
            verified: tokens::VerifiedCache::default(),
        })
    }

    /// Re-reads the key directory, e.g. after `souk keys rotate`.
    pub fn reload_keys(&self, now: OffsetDateTime) -> Result<()> {
        let ring = keys::load_key_ring(&self.keys_dir, now)?;
        let mut guard = self
            .ring
            .write()
            .map_err(|_| Error::internal("key ring poisoned"))?;
        *guard = Arc::new(ring);
        Ok(())
    }

    pub fn key_ring(&self) -> Result<Arc<KeyRing>> {
        self.ring
            .read()
            .map(|g| g.clone())
            .map_err(|_| Error::internal("key ring poisoned"))
    }

    /// The kid new access tokens are signed with.
    pub fn current_kid(&self) -> Result<String> {
        Ok(self.key_ring()?.current_kid.clone())
    }

    /// Mints an access token for a session; returns it with its lifetime in seconds.
    pub fn issue_access(
        &self,
        user: UserId,
        session: SessionId,
        role: Role,
        vendor: Option<VendorId>,
        now: OffsetDateTime,
    ) -> Result<(String, u64)> {
        let ttl = self.config.access_token_ttl_secs;
        let t = now.unix_timestamp();
        let claims = tokens::Claims {
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            sub: user,
            sid: session,
            role,
            vid: vendor,
            iat: t,
            nbf: t,
            exp: t + ttl as i64,
        };
        Ok((tokens::sign(&*self.key_ring()?, &claims)?, ttl))
    }

    /// Verifies an access token; any failure is a plain 401. A token seen before is
    /// recognised by its hash and only its time window is checked again (see
    /// `tokens::VerifiedCache`).
    pub fn verify_access(&self, token: &str, now: OffsetDateTime) -> Result<tokens::Claims> {
        let refuse = |why: &'static str| {
            tracing::debug!(reason = why, "access token refused");
            Error::Unauthorized("invalid or expired access token".into())
        };
        let hash = tokens::token_hash(token);
        if let Some(c) = self.verified.get(&hash) {
            return tokens::check_window(&c, now).map(|()| c).map_err(refuse);
        }
        let ring = self.key_ring()?;
        let c = tokens::verify(
            &ring,
            token,
            &self.config.issuer,
            &self.config.audience,
            now,
        )
        .map_err(refuse)?;
        self.verified.insert(hash, &c, now);
        Ok(c)
    }

    /// Lockout policy for an account (tight) and for a client address (looser: many
    /// people may share one address behind a NAT).
    pub fn account_policy(&self) -> Policy {
        Policy {
            free_failures: self.config.lockout_account_failures,
            base_secs: self.config.lockout_base_secs,
            max_secs: self.config.lockout_max_secs,
            forget_after_secs: self.config.lockout_forget_secs,
        }
    }

    pub fn address_policy(&self) -> Policy {
        Policy {
            free_failures: self.config.lockout_address_failures,
            ..self.account_policy()
        }
    }
}
