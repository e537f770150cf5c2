//! Turning TOTP on and off: setup stores a pending secret, enable confirms it with a code
//! and hands out recovery codes once, disable needs both the password and a code.
//! The secret is shown only during setup; recovery codes only at enable.

use super::store;
use super::{audit, current_user};
use crate::app::AppState;
use crate::auth::{Principal, totp};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize)]
pub struct SetupView {
    pub secret: String,
    pub otpauth_uri: String,
}

pub async fn setup(state: &AppState, p: &Principal) -> Result<SetupView> {
    p.require_interactive()?;
    let user = current_user(state, p)?;
    if user.mfa.enabled() {
        return Err(Error::conflict(
            "mfa_already_enabled",
            "MFA is already on; disable it first",
        ));
    }
    let secret = totp::new_secret();
    let hex_secret = hex::encode(&secret);
    let id = user.id;
    state
        .store
        .write(move |tx| {
            let mut u = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("user"))?;
            u.mfa.pending_secret = Some(hex_secret);
            crate::auth::kv::put(
                tx,
                crate::store::tables::USER_ID_TO_USER,
                &u.id.to_bytes(),
                &u,
            )
        })
        .await?;
    Ok(SetupView {
        secret: totp::secret_base32(&secret),
        otpauth_uri: totp::otpauth_uri(&secret, "Souk", user.email.as_str()),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableInput {
    pub code: String,
}

#[derive(Debug, Serialize)]
pub struct EnabledView {
    pub recovery_codes: Vec<String>,
}

pub async fn enable(state: &AppState, p: &Principal, input: EnableInput) -> Result<EnabledView> {
    p.require_interactive()?;
    let user = current_user(state, p)?;
    if user.mfa.enabled() {
        return Err(Error::conflict("mfa_already_enabled", "MFA is already on"));
    }
    let Some(pending) = user
        .mfa
        .pending_secret
        .as_deref()
        .and_then(|s| hex::decode(s).ok())
    else {
        return Err(Error::conflict(
            "mfa_not_set_up",
            "call /api/v1/auth/mfa/setup first",
        ));
    };
    let now = state.clock.now();
    let step = totp::check(
        &pending,
        &input.code,
        now.unix_timestamp().max(0) as u64,
        None,
    )
    .ok_or_else(|| Error::invalid("code", "invalid_code", "does not match the authenticator"))?;
    let (codes, hashes) = totp::new_recovery_codes();
    let id = user.id;
    let actor = p.actor();
    state
        .store
        .write(move |tx| {
            let mut u = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("user"))?;
            if u.mfa.pending_secret.as_deref() != Some(hex::encode(&pending).as_str()) {
                return Err(Error::conflict(
                    "mfa_not_set_up",
                    "the setup changed meanwhile; start again",
                ));
            }
            u.mfa.secret = u.mfa.pending_secret.take();
            u.mfa.last_step = Some(step);
            u.mfa.recovery_hashes = hashes.iter().map(hex::encode).collect();
            u.updated_at = now;
            crate::auth::kv::put(
                tx,
                crate::store::tables::USER_ID_TO_USER,
                &u.id.to_bytes(),
                &u,
            )?;
            audit(tx, now, &actor, "mfa.enabled", Some(id), None, json!({}))
        })
        .await?;
    Ok(EnabledView {
        recovery_codes: codes,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableInput {
    pub password: String,
    pub code: String,
}

pub async fn disable(state: &AppState, p: &Principal, input: DisableInput) -> Result<()> {
    p.require_interactive()?;
    let user = current_user(state, p)?;
    let Some(secret) = user.mfa.secret.as_deref().and_then(|s| hex::decode(s).ok()) else {
        return Err(Error::conflict("mfa_not_enabled", "MFA is not on"));
    };
    if !state
        .auth
        .hasher
        .verify(&input.password, Some(&user.password_hash))
        .await?
    {
        return Err(Error::invalid(
            "password",
            "wrong_password",
            "is not your password",
        ));
    }
    let now = state.clock.now();
    let code = input.code.trim();
    let totp_ok = totp::check(
        &secret,
        code,
        now.unix_timestamp().max(0) as u64,
        user.mfa.last_step,
    )
    .is_some();
    let recovery_ok = user
        .mfa
        .recovery_hashes
        .contains(&hex::encode(totp::recovery_hash(code)));
    if !(totp_ok || recovery_ok) {
        return Err(Error::invalid(
            "code",
            "invalid_code",
            "does not match the authenticator",
        ));
    }
    let id = user.id;
    let actor = p.actor();
    state
        .store
        .write(move |tx| {
            let mut u = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("user"))?;
            u.mfa = Default::default();
            u.updated_at = now;
            crate::auth::kv::put(
                tx,
                crate::store::tables::USER_ID_TO_USER,
                &u.id.to_bytes(),
                &u,
            )?;
            audit(tx, now, &actor, "mfa.disabled", Some(id), None, json!({}))
        })
        .await
}
