//! The user service: accounts, profiles, login flows, MFA, API keys and admin actions.
//! Commands and queries only; HTTP lives in `api.rs`. Every command validates first,
//! writes state, events and audit in one transaction, and sends mail only after commit.

pub mod admin;
pub mod api;
pub mod api_keys;
pub mod flows;
pub mod mfa;
pub mod model;
pub mod password;
pub mod recovery;
pub mod store;
pub mod sweep;

use crate::app::AppState;
use crate::auth::{ClientInfo, Principal, Role, UserId, session};
use crate::error::{Error, FieldError, Result};
use crate::log::event::{Envelope, Event};
use crate::store::Tx;
use model::{Address, Checks, Email, User, UserStatus, UserView, parse_name};
use serde::Deserialize;
use serde_json::json;
use store::{AuditEntry, Grant, GrantKind};
use time::OffsetDateTime;

pub use crate::auth::UserId as Id;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// Creates a customer account and emails a verification link.
pub async fn register(
    state: &AppState,
    input: RegisterInput,
    client: &ClientInfo,
) -> Result<UserView> {
    let mut checks = Checks::default();
    let email = checks.take(Email::parse("email", &input.email));
    let name = checks.take(parse_name("name", &input.name));
    checks.take(crate::auth::password::check_policy(
        "password",
        &input.password,
        &input.email,
    ));
    checks.finish()?;
    let (Some(email), Some(name)) = (email, name) else {
        return Err(Error::internal("validated fields missing"));
    };
    // Cheap early answer for the common duplicate case; `insert` re-checks atomically.
    if store::id_by_email(&state.store.read()?, &email)?.is_some() {
        return Err(Error::conflict(
            "email_taken",
            "an account with this email already exists",
        ));
    }
    let hash = state.auth.hasher.hash(&input.password).await?;
    let now = state.clock.now();
    let user = new_user(email, name, hash, Role::Customer, now);
    let verify_token = crate::auth::tokens::random_token("ve_");
    let ttl = state.config.auth.verify_token_ttl_secs;
    let ip = client.ip.map(|i| i.to_string());
    let u = user.clone();
    let vt = verify_token.clone();
    state
        .store
        .write(move |tx| {
            store::insert(tx, &u)?;
            emit_registered(tx, &u, now);
            store::put_grant(tx, &vt, &verify_grant(&u, now, ttl))?;
            audit(
                tx,
                now,
                &format!("user:{}", u.id),
                "user.registered",
                Some(u.id),
                ip,
                json!({}),
            )?;
            Ok(())
        })
        .await?;
    send_verification(state, &user, &verify_token).await;
    Ok(UserView::from(&user))
}

pub(crate) fn new_user(
    email: Email,
    name: String,
    hash: String,
    role: Role,
    now: OffsetDateTime,
) -> User {
    User {
        id: UserId::new(),
        email,
        email_verified: false,
        name,
        password_hash: hash,
        role,
        vendor_id: None,
        status: UserStatus::Active,
        phone: None,
        addresses: Vec::new(),
        locale: None,
        marketing_consent: false,
        mfa: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

pub(crate) fn emit_registered(tx: &mut Tx<'_>, u: &User, now: OffsetDateTime) {
    tx.emit(
        Envelope::new(
            Event::UserRegistered {
                user_id: u.id.to_string(),
                email: u.email.to_string(),
                role: u.role.to_string(),
                timestamp: now,
            },
            now,
        )
        .with_actor(format!("user:{}", u.id)),
    );
}

pub(crate) fn emit_updated(
    tx: &mut Tx<'_>,
    user: UserId,
    changes: serde_json::Value,
    actor: &str,
    now: OffsetDateTime,
) {
    tx.emit(
        Envelope::new(
            Event::UserProfileUpdated {
                user_id: user.to_string(),
                changes,
                timestamp: now,
            },
            now,
        )
        .with_actor(actor.to_string()),
    );
}

pub(crate) fn verify_grant(u: &User, now: OffsetDateTime, ttl: u64) -> Grant {
    Grant {
        kind: GrantKind::VerifyEmail,
        user_id: Some(u.id),
        email: Some(u.email.key()),
        expires_at: now + time::Duration::seconds(ttl as i64),
    }
}

pub(crate) async fn send_verification(state: &AppState, u: &User, token: &str) {
    let link = format!(
        "{}/account/verify-email?token={token}",
        state.config.public_url()
    );
    let text = format!(
        "Hello {},\n\nPlease confirm your email address by opening this link:\n\n{link}\n\n\
         If you did not create an account, ignore this message.\n",
        u.name
    );
    state
        .mailer
        .dispatch(
            u.email.to_string(),
            "Confirm your email address".into(),
            text,
        )
        .await;
}

/// Writes one audit entry in the caller's transaction.
pub(crate) fn audit(
    tx: &Tx<'_>,
    now: OffsetDateTime,
    actor: &str,
    action: &str,
    subject: Option<UserId>,
    ip: Option<String>,
    detail: serde_json::Value,
) -> Result<()> {
    store::audit(
        tx,
        &AuditEntry {
            id: uuid::Uuid::now_v7(),
            at: now,
            actor: actor.to_string(),
            action: action.to_string(),
            subject,
            ip,
            detail,
        },
    )
}

/// The live account of a principal; 401 if it is gone or locked.
pub fn current_user(state: &AppState, p: &Principal) -> Result<User> {
    let u = store::get(&state.store.read()?, p.user_id)?
        .ok_or_else(|| Error::Unauthorized("the account no longer exists".into()))?;
    if u.status != UserStatus::Active {
        return Err(Error::Unauthorized("the account is not active".into()));
    }
    Ok(u)
}

pub fn profile(state: &AppState, p: &Principal) -> Result<UserView> {
    Ok(UserView::from(&current_user(state, p)?))
}

/// A partial update: fields left out stay as they are; `null` clears an optional one.
/// `role`, `status`, `email_verified` and `id` are named so they can be refused clearly.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub phone: Option<Option<String>>,
    pub addresses: Option<Vec<Address>>,
    #[serde(default, deserialize_with = "nullable")]
    pub locale: Option<Option<String>>,
    pub marketing_consent: Option<bool>,
    pub email: Option<String>,
    pub current_password: Option<String>,
    pub role: Option<serde_json::Value>,
    pub status: Option<serde_json::Value>,
    pub email_verified: Option<serde_json::Value>,
    pub id: Option<serde_json::Value>,
    pub vendor_id: Option<serde_json::Value>,
}

/// Distinguishes "absent" (outer None) from "null" (Some(None)).
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn parse_phone(raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let allowed = s.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || c == ' ' || c == '-' || c == '(' || c == ')' || (c == '+' && i == 0)
    });
    if !allowed || !(6..=15).contains(&digits) {
        return Err(FieldError::new(
            "phone",
            "invalid_phone",
            "must be a phone number like +33 1 23 45 67 89",
        ));
    }
    Ok(s.to_string())
}

fn parse_locale(raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    let mut parts = s.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase()));
    let rest_ok =
        parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !lang_ok || !rest_ok {
        return Err(FieldError::new(
            "locale",
            "invalid_locale",
            "must be a language tag like en or fr-FR",
        ));
    }
    Ok(s.to_string())
}

fn check_addresses(checks: &mut Checks, list: &[Address]) {
    if list.len() > 10 {
        checks.push(FieldError::new(
            "addresses",
            "too_many",
            "at most 10 addresses",
        ));
    }
    for (i, a) in list.iter().enumerate() {
        for (name, v) in [
            ("name", &a.name),
            ("line1", &a.line1),
            ("city", &a.city),
            ("postal_code", &a.postal_code),
        ] {
            if v.trim().is_empty() {
                checks.push(FieldError::new(
                    format!("addresses[{i}].{name}"),
                    "required",
                    "is required",
                ));
            } else if v.chars().count() > 200 {
                checks.push(FieldError::new(
                    format!("addresses[{i}].{name}"),
                    "too_long",
                    "at most 200 characters",
                ));
            }
        }
        if !(a.country.len() == 2 && a.country.chars().all(|c| c.is_ascii_uppercase())) {
            checks.push(FieldError::new(
                format!("addresses[{i}].country"),
                "invalid_country",
                "must be an ISO 3166-1 alpha-2 code like FR",
            ));
        }
    }
}

/// Updates the caller's profile. Changing the email needs the current password and a
/// verified current address; the new address must be verified again.
pub async fn update_profile(
    state: &AppState,
    p: &Principal,
    input: ProfileInput,
) -> Result<UserView> {
    p.require_interactive()?;
    let user = current_user(state, p)?;
    let mut checks = Checks::default();
    for (field, v) in [
        ("role", &input.role),
        ("status", &input.status),
        ("email_verified", &input.email_verified),
        ("id", &input.id),
        ("vendor_id", &input.vendor_id),
    ] {
        if v.is_some() {
            checks.push(FieldError::new(
                field,
                "not_allowed",
                "cannot be set through the profile",
            ));
        }
    }
    let name = input.name.as_deref().map(|n| parse_name("name", n));
    let name = match name {
        Some(r) => checks.take(r),
        None => None,
    };
    let phone = match &input.phone {
        Some(Some(s)) => checks.take(parse_phone(s)).map(Some),
        Some(None) => Some(None),
        None => None,
    };
    let locale = match &input.locale {
        Some(Some(s)) => checks.take(parse_locale(s)).map(Some),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(list) = &input.addresses {
        check_addresses(&mut checks, list);
    }
    let new_email = match &input.email {
        Some(e) => checks
            .take(Email::parse("email", e))
            .filter(|e| e.as_str() != user.email.as_str()),
        None => None,
    };
    if new_email.is_some() {
        if input.current_password.is_none() {
            checks.push(FieldError::new(
                "current_password",
                "missing",
                "is required to change the email",
            ));
        }
        if !user.email_verified {
            checks.push(FieldError::new(
                "email",
                "email_not_verified",
                "verify your current email address before changing it",
            ));
        }
    }
    checks.finish()?;
    if new_email.is_some() {
        let pw = input.current_password.as_deref().unwrap_or_default();
        if !state
            .auth
            .hasher
            .verify(pw, Some(&user.password_hash))
            .await?
        {
            return Err(Error::invalid(
                "current_password",
                "wrong_password",
                "is not your password",
            ));
        }
    }
    let now = state.clock.now();
    let ttl = state.config.auth.verify_token_ttl_secs;
    let verify_token = crate::auth::tokens::random_token("ve_");
    let vt = verify_token.clone();
    let actor = p.actor();
    let id = user.id;
    let updated = state
        .store
        .write(move |tx| {
            let mut u = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("user"))?;
            let old_email = u.email.clone();
            let mut changes = serde_json::Map::new();
            if let Some(n) = name {
                changes.insert("name".into(), json!(n));
                u.name = n;
            }
            if let Some(ph) = phone {
                changes.insert("phone".into(), json!(ph));
                u.phone = ph;
            }
            if let Some(l) = locale {
                changes.insert("locale".into(), json!(l));
                u.locale = l;
            }
            if let Some(a) = input.addresses {
                changes.insert("addresses".into(), json!(a));
                u.addresses = a;
            }
            if let Some(m) = input.marketing_consent {
                changes.insert("marketing_consent".into(), json!(m));
                u.marketing_consent = m;
            }
            let email_changed = if let Some(e) = new_email {
                changes.insert("email".into(), json!(e.as_str()));
                u.email = e;
                u.email_verified = false;
                true
            } else {
                false
            };
            if changes.is_empty() {
                return Ok((u, false));
            }
            u.updated_at = now;
            store::update(tx, &old_email, &u)?;
            if email_changed {
                store::delete_grants_of(tx, u.id, GrantKind::VerifyEmail)?;
                store::put_grant(tx, &vt, &verify_grant(&u, now, ttl))?;
                audit(
                    tx,
                    now,
                    &actor,
                    "user.email_changed",
                    Some(u.id),
                    None,
                    json!({}),
                )?;
            }
            emit_updated(tx, u.id, serde_json::Value::Object(changes), &actor, now);
            Ok((u, email_changed))
        })
        .await?;
    let (u, email_changed) = updated;
    if email_changed {
        send_verification(state, &u, &verify_token).await;
    }
    Ok(UserView::from(&u))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountInput {
    pub password: String,
}

/// Deletes the caller's account: personal data is anonymised (orders and payments keep
/// pointing at the id, for accounting), every session and key is revoked, the email
/// address is freed.
pub async fn delete_account(
    state: &AppState,
    p: &Principal,
    input: DeleteAccountInput,
    client: &ClientInfo,
) -> Result<()> {
    p.require_interactive()?;
    let user = current_user(state, p)?;
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
    let actor = p.actor();
    let ip = client.ip.map(|i| i.to_string());
    let id = user.id;
    state
        .store
        .write(move |tx| {
            let mut u = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("user"))?;
            let old_email = u.email.clone();
            store::drop_email(tx, &old_email)?;
            anonymise(&mut u, now);
            crate::auth::kv::put(
                tx,
                crate::store::tables::USER_ID_TO_USER,
                &u.id.to_bytes(),
                &u,
            )?;
            session::revoke_all(tx, u.id, "account_deleted", now)?;
            crate::auth::api_keys::revoke_all_of_user(tx, u.id, now)?;
            for kind in [
                GrantKind::VerifyEmail,
                GrantKind::ResetPassword,
                GrantKind::MfaLogin,
            ] {
                store::delete_grants_of(tx, u.id, kind)?;
            }
            tx.emit(
                Envelope::new(
                    Event::UserDeleted {
                        user_id: u.id.to_string(),
                        timestamp: now,
                    },
                    now,
                )
                .with_actor(actor.clone()),
            );
            audit(tx, now, &actor, "user.deleted", Some(u.id), ip, json!({}))?;
            Ok(())
        })
        .await
}

fn anonymise(u: &mut User, now: OffsetDateTime) {
    // `.invalid` is reserved (RFC 2606): the placeholder can never reach a real mailbox.
    u.email = Email::parse(
        "email",
        &format!("deleted-{}@deleted.invalid", u.id.0.simple()),
    )
    .unwrap_or_else(|_| u.email.clone());
    u.email_verified = false;
    u.name = "Deleted user".into();
    u.password_hash = String::new();
    u.phone = None;
    u.addresses.clear();
    u.locale = None;
    u.marketing_consent = false;
    u.mfa = Default::default();
    u.status = UserStatus::Deleted;
    u.updated_at = now;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn phone_and_locale() {
        assert!(parse_phone("+33 1 23 45 67 89").is_ok());
        assert!(parse_phone("(555) 123-4567").is_ok());
        assert!(parse_phone("12").is_err());
        assert!(parse_phone("call me").is_err());
        assert!(parse_phone("12+345678").is_err());
        assert!(parse_locale("en").is_ok());
        assert!(parse_locale("fr-FR").is_ok());
        assert!(parse_locale("EN").is_err());
        assert!(parse_locale("english").is_err());
        assert!(parse_locale("").is_err());
    }

    #[test]
    fn anonymised_user_keeps_only_its_id() {
        let now = OffsetDateTime::now_utc();
        let mut u = new_user(
            Email::parse("e", "ada@example.com").unwrap(),
            "Ada".into(),
            "$argon2id$x".into(),
            Role::Customer,
            now,
        );
        u.phone = Some("+33 1 23 45 67 89".into());
        let id = u.id;
        anonymise(&mut u, now);
        assert_eq!(u.id, id);
        // Exactly the placeholder: a check for "ada" alone failed whenever the id's hex
        // happened to contain those three letters.
        assert_eq!(
            u.email.as_str(),
            format!("deleted-{}@deleted.invalid", id.0.simple())
        );
        assert_eq!(u.name, "Deleted user");
        assert!(u.password_hash.is_empty() && u.phone.is_none());
        assert_eq!(u.status, UserStatus::Deleted);
    }
}
