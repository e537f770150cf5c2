//! Login and what follows it: the MFA step, refresh-token rotation, logout, the session
//! list, and the OAuth2 token endpoint's grants. Failures are counted per account and per
//! client address (exponential back-off); an unknown email costs the same as a wrong password.

use super::model::{Email, User, UserStatus, UserView};
use super::store::{self, Grant, GrantKind};
use super::{audit, current_user};
use crate::app::AppState;
use crate::auth::session::{self, Session};
use crate::auth::tokens::{random_token, token_hash};
use crate::auth::{ApiKeyId, ClientInfo, Principal, SessionId, api_keys, throttle, totp};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub user: UserView,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum LoginOutcome {
    Tokens(Box<TokenPair>),
    MfaRequired {
        mfa_required: bool,
        mfa_token: String,
    },
}

const BAD_LOGIN: &str = "invalid email or password";

/// The per-account lock (durable) and the per-address one (in memory) of one step.
struct Throttles {
    account: String,
    address: String,
}

impl Throttles {
    fn check(&self, state: &AppState, now: OffsetDateTime) -> Result<()> {
        let policy = state.auth.account_policy();
        throttle::check_stored(&state.store.read()?, &self.account, &policy, now)?;
        state
            .auth
            .throttle
            .check(&self.address, &state.auth.address_policy(), now)
    }

    /// Counts a failure against the address now; the account's is counted by
    /// [`throttle::fail_stored`] in the transaction that audits the failure.
    fn fail_address(&self, state: &AppState, now: OffsetDateTime) {
        state
            .auth
            .throttle
            .fail(&self.address, &state.auth.address_policy(), now);
    }

    /// Forgets the account's failures after a success (a write only if there were any).
    async fn succeed(&self, state: &AppState) -> Result<()> {
        if throttle::stored(&state.store.read()?, &self.account)?.is_some() {
            let key = self.account.clone();
            state
                .store
                .write(move |tx| throttle::clear_stored(tx, &key))
                .await?;
        }
        Ok(())
    }
}

pub async fn login(
    state: &AppState,
    input: LoginInput,
    client: &ClientInfo,
) -> Result<LoginOutcome> {
    let email = Email::parse("email", &input.email).map_err(|e| Error::Validation(vec![e]))?;
    if input.password.is_empty() {
        return Err(Error::invalid("password", "required", "is required"));
    }
    let now = state.clock.now();
    let throttles = Throttles {
        account: format!("login:{}", email.key()),
        address: format!("login-ip:{}", client.ip_key()),
    };
    throttles.check(state, now)?;
    let user = {
        let rtx = state.store.read()?;
        match store::id_by_email(&rtx, &email)? {
            Some(id) => store::get(&rtx, id)?,
            None => None,
        }
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.as_str())
        .filter(|h| !h.is_empty());
    let ok = state.auth.hasher.verify(&input.password, hash).await?;
    let ip = client.ip.map(|i| i.to_string());
    let Some(user) = user.filter(|_| ok) else {
        throttles.fail_address(state, now);
        let ip2 = ip.clone();
        let account = throttles.account.clone();
        let policy = state.auth.account_policy();
        state
            .store
            .write(move |tx| {
                throttle::fail_stored(tx, &account, &policy, now)?;
                audit(
                    tx,
                    now,
                    "anonymous",
                    "login.failed",
                    None,
                    ip2,
                    json!({"reason": "bad_credentials"}),
                )
            })
            .await?;
        return Err(Error::Unauthorized(BAD_LOGIN.into()));
    };
    if user.status != UserStatus::Active {
        // The password was right, so saying why does not help an attacker guess.
        return Err(Error::Forbidden(
            "this account is locked; contact the store".into(),
        ));
    }
    throttles.succeed(state).await?;
    if user.mfa.enabled() {
        let token = random_token("mfa_");
        let grant = Grant {
            kind: GrantKind::MfaLogin,
            user_id: Some(user.id),
            email: None,
            expires_at: now + time::Duration::seconds(state.config.auth.mfa_token_ttl_secs as i64),
        };
        let t = token.clone();
        let id = user.id;
        state
            .store
            .write(move |tx| {
                store::put_grant(tx, &t, &grant)?;
                audit(
                    tx,
                    now,
                    &format!("user:{id}"),
                    "login.mfa_required",
                    Some(id),
                    ip,
                    json!({}),
                )
            })
            .await?;
        return Ok(LoginOutcome::MfaRequired {
            mfa_required: true,
            mfa_token: token,
        });
    }
    let pair = open_session(state, user, client, None, "password").await?;
    Ok(LoginOutcome::Tokens(Box::new(pair)))
}

/// Creates a session for `user` and mints its first tokens, auditing the login. With
/// `mfa_token`, the MFA grant is consumed in the same transaction.
async fn open_session(
    state: &AppState,
    user: User,
    client: &ClientInfo,
    consume: Option<(String, MfaUse)>,
    method: &'static str,
) -> Result<TokenPair> {
    let now = state.clock.now();
    let refresh = random_token("rt_");
    let s = Session {
        id: SessionId::new(),
        user_id: user.id,
        role: user.role,
        vendor_id: user.vendor_id,
        api_key_id: None,
        created_at: now,
        last_seen_at: now,
        expires_at: now + time::Duration::seconds(state.config.auth.refresh_token_ttl_secs as i64),
        refresh_hash: Some(hex::encode(token_hash(&refresh))),
        revoked_at: None,
        revoked_reason: None,
        user_agent: client.user_agent.clone(),
        ip: client.ip.map(|i| i.to_string()),
    };
    let s2 = s.clone();
    let user = state
        .store
        .write(move |tx| {
            let mut u = store::get_in(tx, s2.user_id)?
                .ok_or_else(|| Error::Unauthorized(BAD_LOGIN.into()))?;
            if u.status != UserStatus::Active {
                return Err(Error::Unauthorized(BAD_LOGIN.into()));
            }
            if let Some((token, used)) = &consume {
                let g = store::grant_in(tx, token, GrantKind::MfaLogin, now)?;
                if g.and_then(|g| g.user_id) != Some(u.id) {
                    return Err(Error::Unauthorized(
                        "the login step has expired; log in again".into(),
                    ));
                }
                store::delete_grant(tx, token)?;
                match used {
                    MfaUse::Totp(step) => u.mfa.last_step = Some(*step),
                    MfaUse::Recovery(h) => u.mfa.recovery_hashes.retain(|x| x != h),
                }
                crate::auth::kv::put(
                    tx,
                    crate::store::tables::USER_ID_TO_USER,
                    &u.id.to_bytes(),
                    &u,
                )?;
            }
            session::put(tx, &s2)?;
            let actor = format!("user:{}", u.id);
            audit(
                tx,
                now,
                &actor,
                "login.succeeded",
                Some(u.id),
                s2.ip.clone(),
                json!({"method": method, "session_id": s2.id}),
            )?;
            Ok(u)
        })
        .await?;
    let (access, ttl) = state
        .auth
        .issue_access(user.id, s.id, s.role, s.vendor_id, now)?;
    Ok(TokenPair {
        access_token: access,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: refresh,
        user: UserView::from(&user),
    })
}

#[derive(Clone)]
enum MfaUse {
    Totp(u64),
    Recovery(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyInput {
    pub mfa_token: String,
    pub code: String,
}

pub async fn verify_mfa(
    state: &AppState,
    input: MfaVerifyInput,
    client: &ClientInfo,
) -> Result<TokenPair> {
    let now = state.clock.now();
    let grant = store::grant(
        &state.store.read()?,
        &input.mfa_token,
        GrantKind::MfaLogin,
        now,
    )?;
    let Some(user_id) = grant.and_then(|g| g.user_id) else {
        return Err(Error::Unauthorized(
            "the login step has expired; log in again".into(),
        ));
    };
    let throttles = Throttles {
        account: format!("mfa:{user_id}"),
        address: format!("mfa-ip:{}", client.ip_key()),
    };
    throttles.check(state, now)?;
    let user = store::get(&state.store.read()?, user_id)?
        .ok_or_else(|| Error::Unauthorized(BAD_LOGIN.into()))?;
    let secret = user.mfa.secret.as_deref().and_then(|s| hex::decode(s).ok());
    let code = input.code.trim();
    let used = match &secret {
        Some(secret) if code.len() == 6 => totp::check(
            secret,
            code,
            now.unix_timestamp().max(0) as u64,
            user.mfa.last_step,
        )
        .map(MfaUse::Totp),
        Some(_) => {
            let h = hex::encode(totp::recovery_hash(code));
            user.mfa
                .recovery_hashes
                .contains(&h)
                .then_some(MfaUse::Recovery(h))
        }
        None => None,
    };
    let Some(used) = used else {
        throttles.fail_address(state, now);
        let ip = client.ip.map(|i| i.to_string());
        let account = throttles.account.clone();
        let policy = state.auth.account_policy();
        state
            .store
            .write(move |tx| {
                throttle::fail_stored(tx, &account, &policy, now)?;
                audit(
                    tx,
                    now,
                    &format!("user:{user_id}"),
                    "login.mfa_failed",
                    Some(user_id),
                    ip,
                    json!({}),
                )
            })
            .await?;
        return Err(Error::Unauthorized("invalid code".into()));
    };
    throttles.succeed(state).await?;
    let method = match used {
        MfaUse::Totp(_) => "mfa_totp",
        MfaUse::Recovery(_) => "mfa_recovery_code",
    };
    open_session(state, user, client, Some((input.mfa_token, used)), method).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshInput {
    pub refresh_token: String,
}

/// Rotates a refresh token. A token that was already rotated means two parties hold the
/// family: the whole session is revoked and both must log in again.
pub async fn refresh(state: &AppState, token: &str, client: &ClientInfo) -> Result<TokenPair> {
    let now = state.clock.now();
    let hash = token_hash(token);
    let hash_hex = hex::encode(hash);
    let new_refresh = random_token("rt_");
    let new_hash = hex::encode(token_hash(&new_refresh));
    let ttl = state.config.auth.refresh_token_ttl_secs as i64;
    let ip = client.ip.map(|i| i.to_string());
    let ua = client.user_agent.clone();
    enum Outcome {
        Rotated(Box<(Session, User)>),
        Reused,
        Invalid,
    }
    let outcome = state
        .store
        .write(move |tx| {
            let Some(mut s) = session::by_refresh_hash(tx, &hash)? else {
                return Ok(Outcome::Invalid);
            };
            if !s.is_active(now) {
                return Ok(Outcome::Invalid);
            }
            if s.refresh_hash.as_deref() != Some(hash_hex.as_str()) {
                session::revoke(tx, &mut s, "refresh_token_reuse", now)?;
                let actor = format!("user:{}", s.user_id);
                audit(
                    tx,
                    now,
                    &actor,
                    "session.refresh_reuse_revoked",
                    Some(s.user_id),
                    ip,
                    json!({"session_id": s.id}),
                )?;
                return Ok(Outcome::Reused);
            }
            let Some(u) = store::get_in(tx, s.user_id)?.filter(|u| u.status == UserStatus::Active)
            else {
                return Ok(Outcome::Invalid);
            };
            s.refresh_hash = Some(new_hash);
            s.last_seen_at = now;
            s.expires_at = now + time::Duration::seconds(ttl);
            if ip.is_some() {
                s.ip = ip;
            }
            if ua.is_some() {
                s.user_agent = ua;
            }
            session::put(tx, &s)?;
            Ok(Outcome::Rotated(Box::new((s, u))))
        })
        .await?;
    match outcome {
        Outcome::Rotated(b) => {
            let (s, u) = *b;
            let (access, ttl) = state
                .auth
                .issue_access(u.id, s.id, s.role, s.vendor_id, now)?;
            Ok(TokenPair {
                access_token: access,
                token_type: "Bearer",
                expires_in: ttl,
                refresh_token: new_refresh,
                user: UserView::from(&u),
            })
        }
        Outcome::Reused => Err(Error::Unauthorized(
            "this refresh token was already used; the session has been ended for safety".into(),
        )),
        Outcome::Invalid => Err(Error::Unauthorized(
            "invalid or expired refresh token".into(),
        )),
    }
}

/// Ends the caller's session; its access tokens stop working at once.
pub async fn logout(state: &AppState, p: &Principal) -> Result<()> {
    let Some(sid) = p.session_id else {
        return Err(Error::BadRequest(
            "API keys have no session; revoke the key instead".into(),
        ));
    };
    end_session(state, p, sid, "logout").await
}

async fn end_session(
    state: &AppState,
    p: &Principal,
    sid: SessionId,
    reason: &'static str,
) -> Result<()> {
    let now = state.clock.now();
    let user = p.user_id;
    let actor = p.actor();
    state
        .store
        .write(move |tx| {
            let mut s = session::get_in(tx, sid)?
                .filter(|s| s.user_id == user)
                .ok_or_else(|| Error::not_found("session"))?;
            session::revoke(tx, &mut s, reason, now)?;
            audit(
                tx,
                now,
                &actor,
                "session.ended",
                Some(user),
                None,
                json!({"session_id": sid, "reason": reason}),
            )
        })
        .await
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: SessionId,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub via_api_key: Option<ApiKeyId>,
    pub current: bool,
}

/// The caller's live sessions, newest first.
pub fn sessions(state: &AppState, p: &Principal) -> Result<Vec<SessionView>> {
    current_user(state, p)?;
    let now = state.clock.now();
    let list = session::of_user(&state.store.read()?, p.user_id)?;
    Ok(list
        .into_iter()
        .filter(|s| s.is_active(now))
        .map(|s| SessionView {
            id: s.id,
            created_at: crate::clock::rfc3339(s.created_at),
            last_seen_at: crate::clock::rfc3339(state.auth.last_seen.of(&s)),
            expires_at: crate::clock::rfc3339(s.expires_at),
            ip: s.ip,
            user_agent: s.user_agent,
            via_api_key: s.api_key_id,
            current: Some(s.id) == p.session_id,
        })
        .collect())
}

/// Ends one of the caller's sessions; someone else's is 404.
pub async fn revoke_session(state: &AppState, p: &Principal, sid: SessionId) -> Result<()> {
    p.require_interactive()?;
    end_session(state, p, sid, "ended_by_user").await
}

/// The OAuth2 client-credentials grant: an API key buys a short-lived access token bound
/// to a session of its own (no refresh token, as RFC 6749 §4.4.3 advises).
pub async fn client_credentials(
    state: &AppState,
    key_secret: &str,
    client: &ClientInfo,
) -> Result<(String, u64)> {
    let now = state.clock.now();
    let key = api_keys::find(&state.store.read()?, key_secret)?
        .ok_or_else(|| Error::Unauthorized("invalid client credentials".into()))?;
    let s = Session {
        id: SessionId::new(),
        user_id: key.user_id,
        role: key.role,
        vendor_id: key.vendor_id,
        api_key_id: Some(key.id),
        created_at: now,
        last_seen_at: now,
        expires_at: now + time::Duration::seconds(state.config.auth.access_token_ttl_secs as i64),
        refresh_hash: None,
        revoked_at: None,
        revoked_reason: None,
        user_agent: client.user_agent.clone(),
        ip: client.ip.map(|i| i.to_string()),
    };
    let s2 = s.clone();
    let key_id = key.id;
    state
        .store
        .write(move |tx| {
            if let Some(mut k) = api_keys::get_in(tx, key_id)? {
                k.last_used_at = Some(now);
                api_keys::put(tx, &k)?;
            }
            session::put(tx, &s2)
        })
        .await?;
    state
        .auth
        .issue_access(s.user_id, s.id, s.role, s.vendor_id, now)
}
