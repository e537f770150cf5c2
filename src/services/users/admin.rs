//! What admins do to accounts (read, search, change role, lock, unlock), the audit trail,
//! and how the first admin comes to exist: `souk admin create` or a one-time setup link.
//! Every function here checks the admin role itself, whatever route calls it.

use super::model::{Checks, Email, User, UserStatus, UserView, parse_name};
use super::store::{self, AuditEntry, Grant, GrantKind};
use super::{audit, emit_registered, emit_updated, new_user};
use crate::app::AppState;
use crate::auth::{ClientInfo, Principal, Role, UserId, VendorId, api_keys, session};
use crate::error::{Error, Result};
use crate::services::{Page, PageQuery};
use crate::store::Tx;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

pub fn get_user(state: &AppState, p: &Principal, id: UserId) -> Result<UserView> {
    p.require_admin()?;
    let u = store::get(&state.store.read()?, id)?.ok_or_else(|| Error::not_found("user"))?;
    Ok(UserView::from(&u))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Case-insensitive substring of the email or name.
    pub q: Option<String>,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

pub fn list_users(state: &AppState, p: &Principal, query: UserQuery) -> Result<Page<UserView>> {
    p.require_admin()?;
    let page = PageQuery {
        cursor: query.cursor.clone(),
        limit: query.limit,
    };
    let limit = page.limit()?;
    let after = page.cursor_uuid()?.map(UserId);
    let q = query
        .q
        .as_deref()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let (users, more) = store::scan(&state.store.read()?, after, limit, |u| {
        query.role.is_none_or(|r| u.role == r)
            && query.status.is_none_or(|s| u.status == s)
            && q.as_deref()
                .is_none_or(|q| u.email.key().contains(q) || u.name.to_lowercase().contains(q))
    })?;
    let next_cursor = if more {
        users.last().map(|u| u.id.to_string())
    } else {
        None
    };
    Ok(Page {
        items: users.iter().map(UserView::from).collect(),
        next_cursor,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub role: Role,
    /// Required with role `vendor`, refused with the others.
    #[serde(default)]
    pub vendor_id: Option<VendorId>,
}

/// Gives a user a role in the caller's transaction: live sessions follow at once, API keys
/// (which carry the old role) are revoked, and the change is an event and an audit entry.
pub(crate) fn apply_role(
    tx: &mut Tx<'_>,
    id: UserId,
    role: Role,
    vendor: Option<VendorId>,
    actor: &str,
    now: OffsetDateTime,
) -> Result<User> {
    let mut u = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("user"))?;
    if u.status == UserStatus::Deleted {
        return Err(Error::not_found("user"));
    }
    let old = (u.role, u.vendor_id);
    u.role = role;
    u.vendor_id = vendor;
    u.updated_at = now;
    crate::auth::kv::put(
        tx,
        crate::store::tables::USER_ID_TO_USER,
        &u.id.to_bytes(),
        &u,
    )?;
    if old != (role, vendor) {
        session::set_role_all(tx, id, role, vendor, now)?;
        api_keys::revoke_all_of_user(tx, id, now)?;
        emit_updated(
            tx,
            id,
            json!({"role": role, "vendor_id": vendor}),
            actor,
            now,
        );
        audit(
            tx,
            now,
            actor,
            "role.changed",
            Some(id),
            None,
            json!({"from": old.0, "to": role, "vendor_id": vendor}),
        )?;
    }
    Ok(u)
}

pub async fn set_role(
    state: &AppState,
    p: &Principal,
    id: UserId,
    input: RoleInput,
) -> Result<UserView> {
    p.require_admin()?;
    if id == p.user_id {
        return Err(Error::conflict(
            "own_role",
            "admins cannot change their own role",
        ));
    }
    match (input.role, input.vendor_id) {
        (Role::Vendor, None) => {
            return Err(Error::invalid(
                "vendor_id",
                "missing",
                "is required for the vendor role",
            ));
        }
        (Role::Customer | Role::Admin, Some(_)) => {
            return Err(Error::invalid(
                "vendor_id",
                "not_allowed",
                "only the vendor role has a vendor",
            ));
        }
        _ => {}
    }
    let now = state.clock.now();
    let actor = p.actor();
    let u = state
        .store
        .write(move |tx| {
            if let Some(v) = input.vendor_id
                && crate::services::vendors::store::get_in(tx, v)?.is_none()
            {
                return Err(Error::invalid(
                    "vendor_id",
                    "unknown_vendor",
                    "no such vendor",
                ));
            }
            apply_role(tx, id, input.role, input.vendor_id, &actor, now)
        })
        .await?;
    Ok(UserView::from(&u))
}

/// Locks (no login; sessions and keys revoked) or unlocks an account.
pub async fn set_locked(
    state: &AppState,
    p: &Principal,
    id: UserId,
    locked: bool,
) -> Result<UserView> {
    p.require_admin()?;
    if id == p.user_id {
        return Err(Error::conflict(
            "own_account",
            "admins cannot lock their own account",
        ));
    }
    let now = state.clock.now();
    let actor = p.actor();
    let u = state
        .store
        .write(move |tx| {
            let mut u = store::get_in(tx, id)?.ok_or_else(|| Error::not_found("user"))?;
            let (from, to) = match (u.status, locked) {
                (UserStatus::Deleted, _) => return Err(Error::not_found("user")),
                (UserStatus::Active, true) => (UserStatus::Active, UserStatus::Locked),
                (UserStatus::Locked, false) => (UserStatus::Locked, UserStatus::Active),
                _ => return Ok(u),
            };
            u.status = to;
            u.updated_at = now;
            crate::auth::kv::put(
                tx,
                crate::store::tables::USER_ID_TO_USER,
                &u.id.to_bytes(),
                &u,
            )?;
            if locked {
                session::revoke_all(tx, id, "account_locked", now)?;
                api_keys::revoke_all_of_user(tx, id, now)?;
            }
            let action = if locked {
                "user.locked"
            } else {
                "user.unlocked"
            };
            audit(
                tx,
                now,
                &actor,
                action,
                Some(id),
                None,
                json!({"from": from, "to": to}),
            )?;
            Ok(u)
        })
        .await?;
    Ok(UserView::from(&u))
}

pub fn audit_page(state: &AppState, p: &Principal, page: PageQuery) -> Result<Page<AuditEntry>> {
    p.require_admin()?;
    let limit = page.limit()?;
    let (items, more) = store::audit_page(&state.store.read()?, page.cursor_uuid()?, limit)?;
    let next_cursor = if more {
        items.last().map(|e| e.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

// --- the first admin ---

const SETUP_TTL_SECS: i64 = 24 * 3600;

/// On a fresh install (no admin yet) makes a new single-use setup token, voiding older
/// ones, for the start-up message; `None` once an admin exists.
pub async fn setup_token_if_no_admin(state: &AppState) -> Result<Option<String>> {
    if store::any_admin(&state.store.read()?)? {
        return Ok(None);
    }
    let now = state.clock.now();
    let token = crate::auth::tokens::random_token("setup_");
    let t = token.clone();
    state
        .store
        .write(move |tx| {
            delete_setup_grants(tx)?;
            store::put_grant(
                tx,
                &t,
                &Grant {
                    kind: GrantKind::SetupAdmin,
                    user_id: None,
                    email: None,
                    expires_at: now + time::Duration::seconds(SETUP_TTL_SECS),
                },
            )
        })
        .await?;
    Ok(Some(token))
}

/// The browser link for a setup token.
pub fn setup_url(state: &AppState, token: &str) -> String {
    format!("{}/setup?token={token}", state.config.public_url())
}

fn delete_setup_grants(tx: &Tx<'_>) -> Result<()> {
    use redb::ReadableTable;
    let mut doomed = Vec::new();
    {
        let t = tx.open_table(crate::store::tables::ONE_TIME_HASH_TO_GRANT)?;
        for item in t.iter()? {
            let (k, v) = item?;
            if let Ok(g) = crate::store::codec::decode::<Grant>(v.value())
                && g.kind == GrantKind::SetupAdmin
            {
                doomed.push(k.value().to_vec());
            }
        }
    }
    for k in doomed {
        crate::auth::kv::delete(tx, crate::store::tables::ONE_TIME_HASH_TO_GRANT, &k)?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupAdminInput {
    pub token: String,
    pub email: String,
    pub password: String,
    pub name: String,
}

/// Creates the first admin with the setup token (single use, and only while no admin exists).
pub async fn setup_admin(
    state: &AppState,
    input: SetupAdminInput,
    client: &ClientInfo,
) -> Result<UserView> {
    let now = state.clock.now();
    let bad = || {
        Error::invalid(
            "token",
            "invalid_token",
            "this setup link is invalid, used or expired",
        )
    };
    if store::grant(
        &state.store.read()?,
        &input.token,
        GrantKind::SetupAdmin,
        now,
    )?
    .is_none()
    {
        return Err(bad());
    }
    let (email, name) = validate_new_account(&input.email, &input.password, &input.name)?;
    let hash = state.auth.hasher.hash(&input.password).await?;
    let mut user = new_user(email, name, hash, Role::Admin, now);
    user.email_verified = true;
    let u = user.clone();
    let token = input.token;
    let ip = client.ip.map(|i| i.to_string());
    state
        .store
        .write(move |tx| {
            if store::grant_in(tx, &token, GrantKind::SetupAdmin, now)?.is_none() {
                return Err(bad());
            }
            store::delete_grant(tx, &token)?;
            if store::any_admin_in(tx)? {
                return Err(Error::conflict("admin_exists", "an admin already exists"));
            }
            store::insert(tx, &u)?;
            emit_registered(tx, &u, now);
            audit(
                tx,
                now,
                "setup",
                "admin.created",
                Some(u.id),
                ip,
                json!({"via": "setup_link"}),
            )
        })
        .await?;
    Ok(UserView::from(&user))
}

fn validate_new_account(email: &str, password: &str, name: &str) -> Result<(Email, String)> {
    let mut checks = Checks::default();
    let e = checks.take(Email::parse("email", email));
    let n = checks.take(parse_name("name", name));
    checks.take(crate::auth::password::check_policy(
        "password", password, email,
    ));
    checks.finish()?;
    match (e, n) {
        (Some(e), Some(n)) => Ok((e, n)),
        _ => Err(Error::internal("validated fields missing")),
    }
}

/// Creates an admin account (the `souk admin create` command). The email counts as
/// verified: whoever runs the CLI on the server is trusted with it.
pub async fn create_admin(
    state: &AppState,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> Result<UserId> {
    let name = name.unwrap_or("Administrator");
    let (email, name) = validate_new_account(email, password, name)?;
    let hash = state.auth.hasher.hash(password).await?;
    let now = state.clock.now();
    let mut u = new_user(email, name, hash, Role::Admin, now);
    u.email_verified = true;
    let id = u.id;
    state
        .store
        .write(move |tx| {
            store::insert(tx, &u)?;
            emit_registered(tx, &u, now);
            delete_setup_grants(tx)?;
            audit(
                tx,
                now,
                "cli",
                "admin.created",
                Some(u.id),
                None,
                json!({"via": "cli"}),
            )
        })
        .await?;
    Ok(id)
}

/// Blocking form of [`create_admin`] for the CLI (call it outside any async runtime).
pub fn create_admin_blocking(
    state: &AppState,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> Result<UserId> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::internal)?;
    rt.block_on(create_admin(state, email, password, name))
}
