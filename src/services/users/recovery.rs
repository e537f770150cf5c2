//! Proving a mailbox: forgotten passwords (reset links) and email verification. Answers
//! never reveal whether an address has an account; links are single-use and expire.

use super::model::{Email, UserStatus};
use super::store::{self, Grant, GrantKind};
use super::{audit, current_user, emit_updated, send_verification, verify_grant};
use crate::app::AppState;
use crate::auth::tokens::random_token;
use crate::auth::{ClientInfo, Principal, session, throttle};
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotInput {
    pub email: String,
}

/// Sends a reset link if the address has an account; the caller always hears 202.
pub async fn forgot_password(
    state: &AppState,
    input: ForgotInput,
    client: &ClientInfo,
) -> Result<()> {
    let email = Email::parse("email", &input.email).map_err(|e| Error::Validation(vec![e]))?;
    let now = state.clock.now();
    // Every request counts, found or not, so the throttle itself reveals nothing. The
    // account's count is durable (a restart does not reset it), the address's in memory.
    let account = format!("forgot:{}", email.key());
    let policy = state.auth.account_policy();
    throttle::check_stored(&state.store.read()?, &account, &policy, now)?;
    let address = format!("forgot-ip:{}", client.ip_key());
    let ip_policy = state.auth.address_policy();
    state.auth.throttle.check(&address, &ip_policy, now)?;
    state.auth.throttle.fail(&address, &ip_policy, now);
    let user = {
        let rtx = state.store.read()?;
        match store::id_by_email(&rtx, &email)? {
            Some(id) => store::get(&rtx, id)?,
            None => None,
        }
    };
    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
        state
            .store
            .write(move |tx| throttle::fail_stored(tx, &account, &policy, now).map(|_| ()))
            .await?;
        return Ok(());
    };
    let token = random_token("rs_");
    let grant = Grant {
        kind: GrantKind::ResetPassword,
        user_id: Some(user.id),
        email: None,
        expires_at: now + time::Duration::seconds(state.config.auth.reset_token_ttl_secs as i64),
    };
    let t = token.clone();
    let id = user.id;
    let ip = client.ip.map(|i| i.to_string());
    state
        .store
        .write(move |tx| {
            throttle::fail_stored(tx, &account, &policy, now)?;
            // Only the newest link works.
            store::delete_grants_of(tx, id, GrantKind::ResetPassword)?;
            store::put_grant(tx, &t, &grant)?;
            audit(
                tx,
                now,
                "anonymous",
                "password.reset_requested",
                Some(id),
                ip,
                json!({}),
            )
        })
        .await?;
    let link = format!(
        "{}/account/reset-password?token={token}",
        state.config.public_url()
    );
    let minutes = state.config.auth.reset_token_ttl_secs / 60;
    let text = format!(
        "Hello {},\n\nSomeone asked to reset the password of your account. To choose a new\n\
         password, open this link within {minutes} minutes:\n\n{link}\n\n\
         If it was not you, ignore this message; your password stays as it is.\n",
        user.name
    );
    state
        .mailer
        .dispatch(user.email.to_string(), "Reset your password".into(), text)
        .await;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetInput {
    pub token: String,
    pub password: String,
}

fn bad_token() -> Error {
    Error::invalid(
        "token",
        "invalid_token",
        "this link is invalid, used or expired; ask for a new one",
    )
}

/// Sets a new password from a reset link and ends every session of the account.
pub async fn reset_password(
    state: &AppState,
    input: ResetInput,
    client: &ClientInfo,
) -> Result<()> {
    let now = state.clock.now();
    let grant = store::grant(
        &state.store.read()?,
        &input.token,
        GrantKind::ResetPassword,
        now,
    )?;
    let Some(user_id) = grant.and_then(|g| g.user_id) else {
        return Err(bad_token());
    };
    let user = store::get(&state.store.read()?, user_id)?
        .filter(|u| u.status == UserStatus::Active)
        .ok_or_else(bad_token)?;
    crate::auth::password::check_policy("password", &input.password, user.email.as_str())
        .map_err(|e| Error::Validation(vec![e]))?;
    let hash = state.auth.hasher.hash(&input.password).await?;
    let token = input.token;
    let ip = client.ip.map(|i| i.to_string());
    let email_key = user.email.key();
    state
        .store
        .write(move |tx| {
            if store::grant_in(tx, &token, GrantKind::ResetPassword, now)?.is_none() {
                return Err(bad_token());
            }
            let mut u = store::get_in(tx, user_id)?.ok_or_else(bad_token)?;
            u.password_hash = hash;
            // Following the link proved the mailbox.
            u.email_verified = true;
            u.updated_at = now;
            crate::auth::kv::put(
                tx,
                crate::store::tables::USER_ID_TO_USER,
                &u.id.to_bytes(),
                &u,
            )?;
            store::delete_grants_of(tx, u.id, GrantKind::ResetPassword)?;
            store::delete_grants_of(tx, u.id, GrantKind::MfaLogin)?;
            session::revoke_all(tx, u.id, "password_reset", now)?;
            // The lock that a forgotten password probably caused is lifted with it.
            throttle::clear_stored(tx, &format!("login:{email_key}"))?;
            let actor = format!("user:{}", u.id);
            emit_updated(tx, u.id, json!({"password": "changed"}), &actor, now);
            audit(tx, now, &actor, "password.reset", Some(u.id), ip, json!({}))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailInput {
    pub token: String,
}

pub async fn verify_email(state: &AppState, input: VerifyEmailInput) -> Result<()> {
    let now = state.clock.now();
    let token = input.token;
    state
        .store
        .write(move |tx| {
            let g =
                store::grant_in(tx, &token, GrantKind::VerifyEmail, now)?.ok_or_else(bad_token)?;
            let id = g.user_id.ok_or_else(bad_token)?;
            let mut u = store::get_in(tx, id)?.ok_or_else(bad_token)?;
            store::delete_grant(tx, &token)?;
            if u.status != UserStatus::Active || g.email.as_deref() != Some(u.email.key().as_str())
            {
                return Err(bad_token());
            }
            if !u.email_verified {
                u.email_verified = true;
                u.updated_at = now;
                crate::auth::kv::put(
                    tx,
                    crate::store::tables::USER_ID_TO_USER,
                    &u.id.to_bytes(),
                    &u,
                )?;
                let actor = format!("user:{}", u.id);
                emit_updated(tx, u.id, json!({"email_verified": true}), &actor, now);
                audit(
                    tx,
                    now,
                    &actor,
                    "email.verified",
                    Some(u.id),
                    None,
                    json!({}),
                )?;
            }
            Ok(())
        })
        .await
}

/// Sends a fresh verification link to the caller's address (older links stop working).
pub async fn resend_verification(state: &AppState, p: &Principal) -> Result<()> {
    p.require_interactive()?;
    let user = current_user(state, p)?;
    if user.email_verified {
        return Err(Error::conflict(
            "already_verified",
            "this email address is already verified",
        ));
    }
    let now = state.clock.now();
    let key = format!("resend:{}", user.id);
    let policy = state.auth.account_policy();
    throttle::check_stored(&state.store.read()?, &key, &policy, now)?;
    let token = random_token("ve_");
    let grant = verify_grant(&user, now, state.config.auth.verify_token_ttl_secs);
    let t = token.clone();
    let id = user.id;
    state
        .store
        .write(move |tx| {
            throttle::fail_stored(tx, &key, &policy, now)?;
            store::delete_grants_of(tx, id, GrantKind::VerifyEmail)?;
            store::put_grant(tx, &t, &grant)
        })
        .await?;
    send_verification(state, &user, &token).await;
    Ok(())
}
