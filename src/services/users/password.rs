//! Changing a signed-in user's password.

use crate::app::AppState;
use crate::auth::{Principal, session, throttle};
use crate::error::{Error, Result};
use crate::services::users;
use serde_json::json;

/// Changes the caller's password after checking the current one (throttled like a login,
/// the failures kept in redb so a restart keeps the back-off) and ends every other
/// session of the account, keeping the caller's. The policy is the registration's; the
/// hash is made off the async threads; the record, the revocations, the profile event and
/// the audit entry are one transaction. Used by `PUT /api/v1/users/password` and the
/// account security page.
pub async fn change(state: &AppState, p: &Principal, current: &str, new: &str) -> Result<()> {
    p.require_interactive()?;
    let user = users::current_user(state, p)?;
    let now = state.clock.now();
    let key = format!("password-change:{}", user.id);
    let policy = state.auth.account_policy();
    throttle::check_stored(&state.store.read()?, &key, &policy, now)?;
    if current.is_empty() {
        return Err(Error::invalid(
            "current_password",
            "required",
            "is required",
        ));
    }
    if !state
        .auth
        .hasher
        .verify(current, Some(&user.password_hash))
        .await?
    {
        let (k, actor, id) = (key.clone(), p.actor(), user.id);
        state
            .store
            .write(move |tx| {
                throttle::fail_stored(tx, &k, &policy, now)?;
                users::audit(
                    tx,
                    now,
                    &actor,
                    "password.change_failed",
                    Some(id),
                    None,
                    json!({}),
                )
            })
            .await?;
        return Err(Error::invalid(
            "current_password",
            "wrong_password",
            "is not your password",
        ));
    }
    crate::auth::password::check_policy("new_password", new, user.email.as_str())
        .map_err(|e| Error::Validation(vec![e]))?;
    let hash = state.auth.hasher.hash(new).await?;
    let (id, keep, actor) = (user.id, p.session_id, p.actor());
    state
        .store
        .write(move |tx| {
            throttle::clear_stored(tx, &key)?;
            let mut u = users::store::get_in(tx, id)?.ok_or_else(|| Error::not_found("user"))?;
            u.password_hash = hash;
            u.updated_at = now;
            crate::auth::kv::put(
                tx,
                crate::store::tables::USER_ID_TO_USER,
                &u.id.to_bytes(),
                &u,
            )?;
            for mut s in session::of_user_in(tx, id)? {
                if Some(s.id) != keep && s.revoked_at.is_none() {
                    session::revoke(tx, &mut s, "password_changed", now)?;
                }
            }
            users::emit_updated(tx, id, json!({"password": "changed"}), &actor, now);
            users::audit(
                tx,
                now,
                &actor,
                "password.changed",
                Some(id),
                None,
                json!({}),
            )
        })
        .await
}
