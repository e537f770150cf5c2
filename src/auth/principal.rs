//! The caller of a request, as handlers see it. `Principal` (required) and `MaybePrincipal`
//! (guests welcome) accept `Authorization: Bearer <access token or API key>` or
//! `x-api-key: <API key>`; a bad credential is always 401, never a silent guest.
//! Role helpers (`require_admin`, `require_vendor`, ...) are the only way handlers check roles.

use super::{ApiKeyId, Role, SessionId, UserId, VendorId, api_keys, session};
use crate::app::AppState;
use crate::error::{Error, Result};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    /// Set exactly when `role` is `Vendor`.
    pub vendor_id: Option<VendorId>,
    /// The session behind an access token (or an OAuth client-credentials token).
    pub session_id: Option<SessionId>,
    /// Set when the caller authenticated with an API key, directly or through the OAuth
    /// token endpoint.
    pub via_api_key: Option<ApiKeyId>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden("this needs the admin role".into()))
        }
    }

    /// The caller's vendor; 403 unless the caller is a vendor user (or a vendor's key).
    pub fn require_vendor(&self) -> Result<VendorId> {
        match (self.role, self.vendor_id) {
            (Role::Vendor, Some(v)) => Ok(v),
            _ => Err(Error::Forbidden("this needs the vendor role".into())),
        }
    }

    /// For a resource owned by `vendor`: admins pass, the vendor itself passes, anyone
    /// else gets 404 so that other vendors' ids reveal nothing.
    pub fn require_vendor_of(&self, vendor: VendorId) -> Result<()> {
        if self.is_admin() || (self.role == Role::Vendor && self.vendor_id == Some(vendor)) {
            Ok(())
        } else {
            Err(Error::not_found("resource"))
        }
    }

    /// For a resource owned by a user: the user or an admin, else 404.
    pub fn require_self_or_admin(&self, user: UserId) -> Result<()> {
        if self.is_admin() || self.user_id == user {
            Ok(())
        } else {
            Err(Error::not_found("resource"))
        }
    }

    /// Account-management actions (password, MFA, API keys, deletion) need a person's
    /// login, not an API key.
    pub fn require_interactive(&self) -> Result<()> {
        if self.via_api_key.is_some() {
            Err(Error::Forbidden(
                "API keys cannot manage the account; log in instead".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// The actor string put on events and audit entries.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user_id)
    }
}

/// The principal of an active session (the bearer path after the JWT, and the page
/// cookie path); 401 if the session is revoked, expired or unknown.
pub fn principal_for_session(
    state: &AppState,
    id: SessionId,
    now: OffsetDateTime,
) -> Result<Principal> {
    let rtx = state.store.read()?;
    let s = session::active(&rtx, id, now)?
        .ok_or_else(|| Error::Unauthorized("the session has ended; log in again".into()))?;
    // No write here: at most a note in memory, once a minute per session.
    state.auth.last_seen.touch(s.id, s.last_seen_at, now);
    Ok(Principal {
        user_id: s.user_id,
        role: s.role,
        vendor_id: s.vendor_id,
        session_id: Some(s.id),
        via_api_key: s.api_key_id,
    })
}

/// Authenticates one credential: an API key or an access token.
pub fn authenticate(state: &AppState, credential: &str) -> Result<Principal> {
    let now = state.clock.now();
    if api_keys::looks_like_key(credential) {
        return authenticate_api_key(state, credential, now);
    }
    let claims = state.auth.verify_access(credential, now)?;
    let p = principal_for_session(state, claims.sid, now)?;
    // The session is the truth; a token that disagrees with it was not minted for it.
    if p.user_id != claims.sub {
        return Err(Error::Unauthorized(
            "invalid or expired access token".into(),
        ));
    }
    Ok(p)
}

fn authenticate_api_key(state: &AppState, secret: &str, now: OffsetDateTime) -> Result<Principal> {
    let rtx = state.store.read()?;
    let key = api_keys::find(&rtx, secret)?
        .ok_or_else(|| Error::Unauthorized("invalid API key".into()))?;
    drop(rtx);
    // Last use is recorded at most once a minute per key, off the request path.
    if key
        .last_used_at
        .is_none_or(|t| (now - t).whole_seconds() >= 60)
    {
        let store = state.store.clone();
        let id = key.id;
        tokio::spawn(async move {
            let r = store
                .write(move |tx| {
                    if let Some(mut k) = api_keys::get_in(tx, id)?
                        && k.revoked_at.is_none()
                    {
                        k.last_used_at = Some(now);
                        api_keys::put(tx, &k)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "could not record API key use");
            }
        });
    }
    Ok(Principal {
        user_id: key.user_id,
        role: key.role,
        vendor_id: key.vendor_id,
        session_id: None,
        via_api_key: Some(key.id),
    })
}

/// The credential a request carries, if any. Malformed headers are errors, not absence.
pub fn credential(parts: &Parts) -> Result<Option<String>> {
    if let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = v
            .to_str()
            .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
            return Err(Error::Unauthorized(
                "use Authorization: Bearer <token>".into(),
            ));
        }
        return Ok(Some(rest.trim().to_string()));
    }
    if let Some(v) = parts.headers.get("x-api-key") {
        let v = v
            .to_str()
            .map_err(|_| Error::Unauthorized("malformed x-api-key header".into()))?;
        if !api_keys::looks_like_key(v.trim()) {
            return Err(Error::Unauthorized("invalid API key".into()));
        }
        return Ok(Some(v.trim().to_string()));
    }
    Ok(None)
}

/// An extractor's refusal: the problem+json of the error, plus `WWW-Authenticate: Bearer`
/// on a 401 so clients know which scheme to use (RFC 6750 §3).
#[derive(Debug)]
pub struct AuthRejection(pub Error);

impl From<Error> for AuthRejection {
    fn from(e: Error) -> Self {
        AuthRejection(e)
    }
}

impl axum::response::IntoResponse for AuthRejection {
    fn into_response(self) -> axum::response::Response {
        let unauthorized = matches!(self.0, Error::Unauthorized(_));
        let mut r = self.0.into_response();
        if unauthorized {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"souk\""),
            );
        }
        r
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let cred = credential(parts)?
            .ok_or_else(|| Error::Unauthorized("authentication required".into()))?;
        let p = authenticate(state, &cred)?;
        parts.extensions.insert(p.clone());
        Ok(p)
    }
}

/// For routes open to guests: `None` without credentials, 401 with bad ones.
#[derive(Debug, Clone)]
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybePrincipal {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        if credential(parts)?.is_none() {
            return Ok(MaybePrincipal(None));
        }
        Principal::from_request_parts(parts, state)
            .await
            .map(|p| MaybePrincipal(Some(p)))
    }
}

/// For admin-only routes: 401 without credentials, 403 for anyone but an admin, checked
/// before the body is read.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        let p = Principal::from_request_parts(parts, state).await?;
        p.require_admin()?;
        Ok(Admin(p))
    }
}

/// For vendor-only routes: the principal and the vendor it acts for.
#[derive(Debug, Clone)]
pub struct VendorUser(pub Principal, pub VendorId);

impl FromRequestParts<AppState> for VendorUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        let p = Principal::from_request_parts(parts, state).await?;
        let v = p.require_vendor()?;
        Ok(VendorUser(p, v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn p(role: Role, vendor: Option<VendorId>) -> Principal {
        Principal {
            user_id: UserId::new(),
            role,
            vendor_id: vendor,
            session_id: None,
            via_api_key: None,
        }
    }

    #[test]
    fn role_checks() {
        let v1 = VendorId::new();
        let v2 = VendorId::new();
        let admin = p(Role::Admin, None);
        let vendor = p(Role::Vendor, Some(v1));
        let customer = p(Role::Customer, None);
        assert!(admin.require_admin().is_ok());
        assert_eq!(vendor.require_admin().unwrap_err().code(), "forbidden");
        assert_eq!(customer.require_admin().unwrap_err().code(), "forbidden");
        assert_eq!(vendor.require_vendor().unwrap(), v1);
        assert!(customer.require_vendor().is_err());
        assert!(admin.require_vendor().is_err());
        assert!(vendor.require_vendor_of(v1).is_ok());
        assert_eq!(
            vendor.require_vendor_of(v2).unwrap_err().code(),
            "not_found"
        );
        assert!(admin.require_vendor_of(v2).is_ok());
        assert!(customer.require_vendor_of(v1).is_err());
        assert!(customer.require_self_or_admin(customer.user_id).is_ok());
        assert!(customer.require_self_or_admin(vendor.user_id).is_err());
        let mut keyed = vendor.clone();
        keyed.via_api_key = Some(ApiKeyId::new());
        assert!(keyed.require_interactive().is_err());
        assert!(vendor.require_interactive().is_ok());
    }
}
